//! The one place that reads settings: defaults, then an optional TOML file, then the environment.
//!
//! Every setting has one name (the environment variable). A config file (`REGASSIST_CONFIG`)
//! may give the same names in lower case (`port = 8080`). Invalid values stop the start with a
//! message naming the setting; secrets are wrapped in [`Secret`] so they never print.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

mod openfda;
pub use openfda::OpenFdaTuning;

/// A secret string whose `Debug`/`Display` never reveal it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Where predicate searches are answered from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenFdaMode {
    /// The local mirror when it holds 510(k) data, openFDA otherwise.
    Auto,
    Live,
    Mirror,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub database_url: Secret,
    pub db_max_connections: u32,
    pub db_acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout` of every connection (0 = none).
    pub db_statement_timeout: Duration,
    /// PostgreSQL `lock_timeout` of every connection (0 = none).
    pub db_lock_timeout: Duration,
    pub auto_migrate: bool,
    pub load_classification: bool,
    /// Import the bundled 510(k) files on a first start with an empty mirror.
    pub seed_510k: bool,
    pub seed_510k_dir: String,
    pub redis_url: Option<Secret>,
    pub jwt_secret: Option<Secret>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub jwt_leeway_secs: u64,
    pub openfda_base_url: String,
    pub openfda_api_key: Option<Secret>,
    pub openfda_mode: OpenFdaMode,
    pub openfda_rate_per_minute: u32,
    pub openfda_daily_limit: u32,
    pub openfda_timeout: Duration,
    pub cache_ttl: Duration,
    /// How often a replica looks for a new mirror import (cached searches follow it).
    pub mirror_recheck: Duration,
    /// Retries, breaker, pacing and budget details of the openFDA client.
    pub openfda_tuning: OpenFdaTuning,
    pub audit_checkpoint_key: Option<Secret>,
    pub audit_checkpoint_file: String,
    pub audit_require_delete_reason: bool,
    pub api_rate_per_minute: u32,
    pub trust_forwarded_for: bool,
    pub log_format: LogFormat,
    pub cors_origins: Vec<String>,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    /// Bytes of rendered list pages each replica keeps (`http::pages`); 0 keeps none.
    pub page_cache_bytes: usize,
    pub shutdown_drain: Duration,
    pub shutdown_grace: Duration,
}

/// The shortest `JWT_SECRET` and `AUDIT_CHECKPOINT_KEY` accepted (RFC 7518 §3.2 for HS256).
pub const MIN_KEY_BYTES: usize = 32;

/// The largest clock skew accepted for `exp`/`nbf` (`REGASSIST_JWT_LEEWAY_SECS`).
pub const MAX_JWT_LEEWAY_SECS: u64 = 300;

/// A setting that could not be used; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub reason: String,
}

fn invalid(name: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// The raw settings, by environment name, before parsing.
struct Sources(BTreeMap<String, String>);

impl Sources {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).trim().to_string()
    }

    fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| invalid(name, format!("{e} (got {raw:?})"))),
        }
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(invalid(name, format!("expected true or false, got {v:?}"))),
        }
    }

    fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(|v| Secret::new(v.trim()))
    }

    /// A signing key: at least [`MIN_KEY_BYTES`] bytes and not a placeholder left from an
    /// example file (`CHANGE_ME…`), which would let anyone who read the example forge tokens.
    fn key(&self, name: &str) -> Result<Option<Secret>, ConfigError> {
        let Some(key) = self.secret(name) else {
            return Ok(None);
        };
        if key.expose().to_ascii_lowercase().contains("change_me") {
            return Err(invalid(
                name,
                "is the placeholder of .env.prod.example; generate a key with `openssl rand -hex 32`",
            ));
        }
        if key.expose().len() < MIN_KEY_BYTES {
            return Err(invalid(
                name,
                format!("must be at least {MIN_KEY_BYTES} bytes long; generate one with `openssl rand -hex 32`"),
            ));
        }
        Ok(Some(key))
    }
}

impl Config {
    /// Defaults, then the file named by `REGASSIST_CONFIG` (if any), then the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let mut merged = BTreeMap::new();
        if let Some(path) = env.get("REGASSIST_CONFIG").filter(|p| !p.is_empty()) {
            merged.extend(read_file(path)?);
        }
        merged.extend(env);
        Self::from_map(merged)
    }

    /// Builds a config from explicit settings only (tests and tools).
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        Self::from_map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn from_map(map: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let s = Sources(map);
        let jwt_secret = s.key("JWT_SECRET")?;
        let jwt_leeway_secs: u64 = s.parse("REGASSIST_JWT_LEEWAY_SECS", 30)?;
        if jwt_leeway_secs > MAX_JWT_LEEWAY_SECS {
            return Err(invalid(
                "REGASSIST_JWT_LEEWAY_SECS",
                format!("must be at most {MAX_JWT_LEEWAY_SECS} seconds (got {jwt_leeway_secs}); a longer leeway keeps expired tokens working"),
            ));
        }
        let database_url = s.string("DATABASE_URL", "sqlite://data/regassist.db");
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "DATABASE_URL",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        let redis_url = s.secret("REDIS_URL");
        if let Some(url) = &redis_url {
            if !(url.expose().starts_with("redis://") || url.expose().starts_with("rediss://")) {
                return Err(invalid(
                    "REDIS_URL",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        let openfda_api_key = s.secret("OPENFDA_API_KEY");
        let openfda_mode = match s
            .string("OPENFDA_MODE", "auto")
            .to_ascii_lowercase()
            .as_str()
        {
            "auto" => OpenFdaMode::Auto,
            "live" => OpenFdaMode::Live,
            "mirror" => OpenFdaMode::Mirror,
            other => {
                return Err(invalid(
                    "OPENFDA_MODE",
                    format!("expected auto, live or mirror, got {other:?}"),
                ))
            }
        };
        let openfda_base_url = s.string("OPENFDA_BASE_URL", "https://api.fda.gov");
        url::Url::parse(&openfda_base_url)
            .map_err(|e| invalid("OPENFDA_BASE_URL", e.to_string()))?;
        let default_daily = if openfda_api_key.is_some() {
            120_000
        } else {
            1_000
        };
        let log_format = match s.string("LOG_FORMAT", "text").to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
                ))
            }
        };
        let cors_origins = s
            .string("CORS_ORIGINS", "")
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(String::from)
            .collect::<Vec<_>>();
        for origin in &cors_origins {
            if origin != "*" && http::HeaderValue::from_str(origin).is_err() {
                return Err(invalid("CORS_ORIGINS", format!("bad origin {origin:?}")));
            }
        }
        let db_max_connections: u32 = s.parse("REGASSIST_DB_MAX_CONNECTIONS", 16)?;
        if db_max_connections == 0 {
            return Err(invalid(
                "REGASSIST_DB_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        let body_limit_bytes: usize = s.parse("REGASSIST_BODY_LIMIT_BYTES", 1024 * 1024)?;
        if body_limit_bytes < 1024 {
            return Err(invalid(
                "REGASSIST_BODY_LIMIT_BYTES",
                "must be at least 1024",
            ));
        }
        let page_cache_mib: usize = s.parse("REGASSIST_PAGE_CACHE_MIB", 16)?;
        if page_cache_mib > 4096 {
            return Err(invalid("REGASSIST_PAGE_CACHE_MIB", "must be at most 4096"));
        }
        let openfda_rate_per_minute: u32 = s.parse("OPENFDA_RATE_PER_MINUTE", 200)?;
        if openfda_rate_per_minute == 0 || openfda_rate_per_minute > 240 {
            return Err(invalid(
                "OPENFDA_RATE_PER_MINUTE",
                "must be between 1 and 240 (openFDA's own limit)",
            ));
        }
        Ok(Config {
            host: s.string("REGASSIST_HOST", "0.0.0.0"),
            port: s.parse("PORT", 8000)?,
            database_url: Secret::new(database_url),
            db_max_connections,
            db_acquire_timeout: Duration::from_millis(
                s.parse("REGASSIST_DB_ACQUIRE_TIMEOUT_MS", 5_000)?,
            ),
            db_statement_timeout: Duration::from_millis(
                s.parse("REGASSIST_DB_STATEMENT_TIMEOUT_MS", 15_000)?,
            ),
            db_lock_timeout: Duration::from_millis(s.parse("REGASSIST_DB_LOCK_TIMEOUT_MS", 5_000)?),
            auto_migrate: s.bool("REGASSIST_AUTO_MIGRATE", true)?,
            load_classification: s.bool("REGASSIST_LOAD_CLASSIFICATION", true)?,
            seed_510k: s.bool("REGASSIST_SEED_510K", true)?,
            seed_510k_dir: s.string("REGASSIST_SEED_DIR", "data-fda/510k"),
            redis_url,
            jwt_secret,
            jwt_issuer: s.get("JWT_ISSUER").map(String::from),
            jwt_audience: s.get("JWT_AUDIENCE").map(String::from),
            jwt_leeway_secs,
            openfda_base_url: openfda_base_url.trim_end_matches('/').to_string(),
            openfda_api_key,
            openfda_mode,
            openfda_rate_per_minute,
            openfda_daily_limit: s.parse("OPENFDA_DAILY_LIMIT", default_daily)?,
            openfda_timeout: Duration::from_millis(
                s.parse("REGASSIST_OPENFDA_TIMEOUT_MS", 10_000)?,
            ),
            cache_ttl: Duration::from_secs(s.parse("REGASSIST_CACHE_TTL_SECS", 86_400)?),
            mirror_recheck: Duration::from_secs(s.parse("REGASSIST_MIRROR_RECHECK_SECS", 10)?),
            openfda_tuning: OpenFdaTuning::from_sources(&s)?,
            audit_checkpoint_key: s.key("AUDIT_CHECKPOINT_KEY")?,
            audit_checkpoint_file: s.string(
                "REGASSIST_AUDIT_CHECKPOINT_FILE",
                "data/audit-checkpoint.json",
            ),
            audit_require_delete_reason: s.bool("REGASSIST_AUDIT_REQUIRE_DELETE_REASON", false)?,
            api_rate_per_minute: s.parse("API_RATE_PER_MINUTE", 600)?,
            trust_forwarded_for: s.bool("REGASSIST_TRUST_FORWARDED_FOR", false)?,
            log_format,
            cors_origins,
            request_timeout: Duration::from_secs(s.parse("REGASSIST_REQUEST_TIMEOUT_SECS", 30)?),
            body_limit_bytes,
            page_cache_bytes: page_cache_mib * 1024 * 1024,
            shutdown_drain: Duration::from_secs(s.parse("REGASSIST_SHUTDOWN_DRAIN_SECS", 0)?),
            shutdown_grace: Duration::from_secs(s.parse("REGASSIST_SHUTDOWN_GRACE_SECS", 20)?),
        })
    }

    /// True when the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database_url.expose().starts_with("postgres")
    }

    /// The settings as operators see them, secrets replaced by `***`.
    pub fn redacted(&self) -> String {
        let mut out = format!("{self:#?}");
        // The database URL may carry a password; show the URL without it.
        let shown = redact_url(self.database_url.expose());
        out = out.replacen(
            "database_url: \"***\"",
            &format!("database_url: {shown:?}"),
            1,
        );
        out
    }
}

/// Removes the password from a URL, keeping the rest readable.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_string(),
    }
}

fn read_file(path: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid("REGASSIST_CONFIG", format!("cannot read {path}: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| invalid("REGASSIST_CONFIG", format!("{path}: {e}")))?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        out.insert(key.to_ascii_uppercase(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_shape() {
        let c = Config::from_pairs([]).unwrap();
        assert_eq!(c.port, 8000);
        assert!(!c.is_postgres());
        assert!(c.redis_url.is_none());
        assert_eq!(c.openfda_daily_limit, 1_000);
        assert_eq!(c.body_limit_bytes, 1024 * 1024);
        assert_eq!(c.page_cache_bytes, 16 * 1024 * 1024);
    }

    #[test]
    fn short_jwt_secret_is_refused_by_name() {
        let err = Config::from_pairs([("JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(err.name, "JWT_SECRET");
    }

    #[test]
    fn short_or_placeholder_keys_are_refused_by_name() {
        let example = include_str!("../.env.prod.example");
        let value_of = |name: &str| {
            example
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} is in .env.prod.example"))
                .to_string()
        };
        for name in ["JWT_SECRET", "AUDIT_CHECKPOINT_KEY"] {
            let placeholder = value_of(name);
            let err = Config::from_pairs([(name, placeholder.as_str())]).unwrap_err();
            assert_eq!(err.name, name, "the example's placeholder");
            assert!(err.to_string().contains("placeholder"), "{err}");
            // The placeholder of the example before this rule: 50 bytes, and still refused.
            let old = "CHANGE_ME_at_least_32_random_bytes_0123456789abcdef";
            assert_eq!(Config::from_pairs([(name, old)]).unwrap_err().name, name);
            let short = "x".repeat(MIN_KEY_BYTES - 1);
            let err = Config::from_pairs([(name, short.as_str())]).unwrap_err();
            assert_eq!(err.name, name, "31 bytes");
            assert!(err.to_string().contains("32 bytes"), "{err}");
            let enough = "k".repeat(MIN_KEY_BYTES);
            assert!(Config::from_pairs([(name, enough.as_str())]).is_ok());
        }
    }

    #[test]
    fn the_jwt_leeway_is_capped() {
        let err = Config::from_pairs([("REGASSIST_JWT_LEEWAY_SECS", "301")]).unwrap_err();
        assert_eq!(err.name, "REGASSIST_JWT_LEEWAY_SECS");
        assert!(err.to_string().contains("at most 300"), "{err}");
        let c = Config::from_pairs([("REGASSIST_JWT_LEEWAY_SECS", "300")]).unwrap();
        assert_eq!(c.jwt_leeway_secs, 300);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("OPENFDA_MODE", "sometimes"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x"),
            ("REGASSIST_AUTO_MIGRATE", "perhaps"),
            ("OPENFDA_RATE_PER_MINUTE", "1000"),
        ] {
            let err = Config::from_pairs([(name, value)]).unwrap_err();
            assert_eq!(err.name, name, "{value}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let c = Config::from_pairs([
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef-secret"),
            (
                "DATABASE_URL",
                "postgres://app:hunter2@db:5432/medical_device_assistant",
            ),
            ("OPENFDA_API_KEY", "abc-key-123"),
        ])
        .unwrap();
        let shown = c.redacted();
        assert!(!shown.contains("0123456789abcdef"));
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("abc-key-123"));
        assert!(shown.contains("db:5432/medical_device_assistant"));
        assert_eq!(c.openfda_daily_limit, 120_000);
    }
}
