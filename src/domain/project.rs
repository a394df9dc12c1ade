//! Project input rules: what a client may set on create and update, validated field by field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::types::Json;
use utoipa::ToSchema;

use super::ids::ProductCode;
use super::validation::{FieldErrors, Invalid};

/// JSON Schema pattern of a string that `str::trim` leaves non-empty: a character outside
/// Unicode White_Space. Spelled out because `\S` means different sets in ECMA, Python and Rust
/// regexes (the fuzzer read U+0085 as a non-space; `trim` removes it). Attribute macros take
/// only literals, so the same text is repeated in `#[schema(pattern = ...)]`.
pub const NOT_BLANK: &str =
    r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// A project: one device on its way to a submission.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Project {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub device_type: Option<String>,
    pub intended_use: Option<String>,
    pub product_code: Option<String>,
    /// `draft`, `active`, `in_progress` or `completed`.
    pub status: String,
    /// `high`, `medium`, `low` or null.
    pub priority: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub tags: Json<Vec<String>>,
    /// Starts at 1 and grows by one per change; the `ETag`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const STATUSES: [&str; 4] = ["draft", "active", "in_progress", "completed"];
pub const PRIORITIES: [&str; 3] = ["high", "medium", "low"];

/// Body of `POST /api/projects`. `id`, `user_id`, `version`, `status` and timestamps are not
/// accepted: unknown fields are refused with 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// 1..255 characters after trimming.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    #[schema(max_length = 255)]
    pub device_type: Option<String>,
    #[schema(max_length = 2000)]
    pub intended_use: Option<String>,
    /// Three capital letters, e.g. `DQY`.
    #[schema(pattern = "^[A-Z]{3}$", max_length = 3)]
    pub product_code: Option<String>,
    /// `high`, `medium` or `low`.
    #[schema(pattern = "^(high|medium|low)$", max_length = 6)]
    pub priority: Option<String>,
    /// At most 10 tags of 1..50 characters.
    #[serde(default)]
    #[schema(max_items = 10, value_type = Vec<Tag>)]
    pub tags: Vec<String>,
}

/// A tag: 1..50 characters, not only spaces.
/// Exists only for the OpenAPI document.
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .min_length(Some(1))
            .max_length(Some(50))
            .pattern(Some(NOT_BLANK))
            .into()
    }
}

impl ToSchema for Tag {}

/// A create request that passed validation.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub name: String,
    pub description: Option<String>,
    pub device_type: Option<String>,
    pub intended_use: Option<String>,
    pub product_code: Option<String>,
    pub priority: Option<String>,
    pub tags: Vec<String>,
}

/// Body of `PUT`/`PATCH /api/projects/{id}`: every field optional; `null` clears a clearable field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub device_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub intended_use: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^[A-Z]{3}$", max_length = 3)]
    pub product_code: Option<Option<String>>,
    /// `draft`, `active`, `in_progress` or `completed`.
    #[schema(pattern = "^(draft|active|in_progress|completed)$", max_length = 11)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^(high|medium|low)$", max_length = 6)]
    pub priority: Option<Option<String>>,
    #[schema(max_items = 10, value_type = Option<Vec<Tag>>)]
    pub tags: Option<Vec<String>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A validated update.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges(UpdateProjectValues);

#[derive(Debug, Clone, Default)]
struct UpdateProjectValues {
    name: Option<String>,
    description: Option<Option<String>>,
    device_type: Option<Option<String>>,
    intended_use: Option<Option<String>>,
    product_code: Option<Option<String>>,
    status: Option<String>,
    priority: Option<Option<String>>,
    tags: Option<Vec<String>>,
}

/// The values a project will hold after an update.
pub struct ProjectValues {
    pub name: String,
    pub description: Option<String>,
    pub device_type: Option<String>,
    pub intended_use: Option<String>,
    pub product_code: Option<String>,
    pub status: String,
    pub priority: Option<String>,
    pub tags: Vec<String>,
}

fn check_name(name: &str, errors: &mut FieldErrors) -> String {
    let name = name.trim().to_string();
    let len = name.chars().count();
    if len == 0 {
        push(errors, "name", "must not be empty");
    } else if len > 255 {
        push(errors, "name", "must be at most 255 characters");
    }
    name
}

fn check_text(
    field: &str,
    value: Option<&str>,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    if value.chars().count() > max {
        push(errors, field, &format!("must be at most {max} characters"));
    }
    Some(value.to_string())
}

fn check_code(value: Option<&str>, errors: &mut FieldErrors) -> Option<String> {
    let value = value?;
    if ProductCode::parse(value).is_none() {
        push(
            errors,
            "product_code",
            "must be three capital letters, e.g. DQY",
        );
    }
    Some(value.to_string())
}

fn check_priority(value: Option<&str>, errors: &mut FieldErrors) -> Option<String> {
    let value = value?;
    if !PRIORITIES.contains(&value) {
        push(errors, "priority", "must be high, medium or low");
    }
    Some(value.to_string())
}

/// The most tags a project holds, and the longest tag, in characters.
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_CHARS: usize = 50;

/// Stops at the first rejection: a list over the count is refused before any tag is read, so a
/// hostile list of any length costs one comparison (the body limit bounds the rest).
fn check_tags(tags: &[String], errors: &mut FieldErrors) -> Vec<String> {
    if tags.len() > MAX_TAGS {
        push(errors, "tags", &format!("at most {MAX_TAGS} tags"));
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() || tag.chars().nth(MAX_TAG_CHARS).is_some() {
            push(
                errors,
                "tags",
                &format!("each tag must be 1..{MAX_TAG_CHARS} characters"),
            );
            return Vec::new();
        }
        // At most MAX_TAGS entries: the scan is bounded.
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    out
}

fn push(errors: &mut FieldErrors, field: &str, message: &str) {
    errors
        .entry(field.to_string())
        .or_default()
        .push(message.to_string());
}

impl CreateProject {
    pub fn validate(self) -> Result<NewProject, Invalid> {
        let mut errors = FieldErrors::new();
        let project = NewProject {
            name: check_name(&self.name, &mut errors),
            description: check_text(
                "description",
                self.description.as_deref(),
                1000,
                &mut errors,
            ),
            device_type: check_text("device_type", self.device_type.as_deref(), 255, &mut errors),
            intended_use: check_text(
                "intended_use",
                self.intended_use.as_deref(),
                2000,
                &mut errors,
            ),
            product_code: check_code(self.product_code.as_deref(), &mut errors),
            priority: check_priority(self.priority.as_deref(), &mut errors),
            tags: check_tags(&self.tags, &mut errors),
        };
        Invalid::check(errors)?;
        Ok(project)
    }
}

impl UpdateProject {
    pub fn validate(self) -> Result<ProjectChanges, Invalid> {
        let mut errors = FieldErrors::new();
        let values = UpdateProjectValues {
            name: self.name.as_deref().map(|n| check_name(n, &mut errors)),
            description: self
                .description
                .map(|v| check_text("description", v.as_deref(), 1000, &mut errors)),
            device_type: self
                .device_type
                .map(|v| check_text("device_type", v.as_deref(), 255, &mut errors)),
            intended_use: self
                .intended_use
                .map(|v| check_text("intended_use", v.as_deref(), 2000, &mut errors)),
            product_code: self
                .product_code
                .map(|v| check_code(v.as_deref(), &mut errors)),
            status: self.status.inspect(|s| {
                if !STATUSES.contains(&s.as_str()) {
                    push(
                        &mut errors,
                        "status",
                        "must be draft, active, in_progress or completed",
                    );
                }
            }),
            priority: self
                .priority
                .map(|v| check_priority(v.as_deref(), &mut errors)),
            tags: self.tags.map(|t| check_tags(&t, &mut errors)),
        };
        Invalid::check(errors)?;
        Ok(ProjectChanges(values))
    }
}

impl ProjectChanges {
    /// The project's values with these changes applied.
    pub fn apply(&self, p: &Project) -> ProjectValues {
        let c = &self.0;
        ProjectValues {
            name: c.name.clone().unwrap_or_else(|| p.name.clone()),
            description: c
                .description
                .clone()
                .unwrap_or_else(|| p.description.clone()),
            device_type: c
                .device_type
                .clone()
                .unwrap_or_else(|| p.device_type.clone()),
            intended_use: c
                .intended_use
                .clone()
                .unwrap_or_else(|| p.intended_use.clone()),
            product_code: c
                .product_code
                .clone()
                .unwrap_or_else(|| p.product_code.clone()),
            status: c.status.clone().unwrap_or_else(|| p.status.clone()),
            priority: c.priority.clone().unwrap_or_else(|| p.priority.clone()),
            tags: c.tags.clone().unwrap_or_else(|| p.tags.0.clone()),
        }
    }
}

/// What a project says about its device (name, type, description, intended use), optionally after
/// the caller's own words: the text searches rank against and the classifier reads.
pub fn device_text(project: &Project, extra: Option<&str>) -> String {
    [
        extra,
        Some(project.name.as_str()),
        project.device_type.as_deref(),
        project.description.as_deref(),
        project.intended_use.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(". ")
    .chars()
    // Each field is bounded where it is parsed; the cut keeps the ranking's input bounded even
    // for text stored before those bounds.
    .take(MAX_SUBJECT_CHARS)
    .collect()
}

/// The longest subject text ranking and classification read: the sum of the field bounds of a
/// search (q 2000, name 255, type 255, description 5000, intended use 2000), rounded up.
pub const MAX_SUBJECT_CHARS: usize = 10_000;

#[cfg(test)]
#[path = "project_tests.rs"]
mod tests;
