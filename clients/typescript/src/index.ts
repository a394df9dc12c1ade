// A thin, typed client for the regassist API. The types come from `./schema.ts`, generated from
// the service's OpenAPI document (`npm run generate`); this file adds only what a generator
// cannot: the bearer token, errors as a typed exception, and pagination via `X-Total-Count`.

import type { components, paths } from "./schema.js";

export type { components, paths } from "./schema.js";
export type Schemas = components["schemas"];
export type Project = Schemas["Project"];
export type CreateProject = Schemas["CreateProject"];
export type UpdateProject = Schemas["UpdateProject"];
export type PredicateDevice = Schemas["PredicateDevice"];
export type ErrorCode = Schemas["ErrorCode"];
export type ErrorBody = Schemas["ErrorBody"];

type QueryOf<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  parameters: { query?: infer Q };
}
  ? NonNullable<Q>
  : never;

/** Where the bearer token comes from: a fixed string (an `rk_` API key) or a function that
 * returns a fresh short-lived JWT (called before every request, so it may cache and renew). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ClientOptions {
  /** e.g. `https://regassist.example.com` (no trailing slash needed). */
  baseUrl: string;
  token?: TokenSource;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
}

/** A non-2xx answer: the service's one error body, with the status and `Retry-After`. */
export class RegassistError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly requestId: string;
  readonly fields: Record<string, string[]> | undefined;
  /** Seconds to wait, from `Retry-After` (429, 503, 504), if the service sent one. */
  readonly retryAfter: number | undefined;

  constructor(status: number, body: ErrorBody, retryAfter: number | undefined) {
    super(`${status} ${body.code}: ${body.message} (request ${body.request_id})`);
    this.name = "RegassistError";
    this.status = status;
    this.code = body.code;
    this.requestId = body.request_id;
    this.fields = body.fields ?? undefined;
    this.retryAfter = retryAfter;
  }
}

/** One page of a list and the number of items across all pages (`X-Total-Count`). */
export interface Page<T> {
  items: T[];
  total: number;
}

/** An answer's body with the headers a caller may need (`ETag` for If-Match). */
export interface WithEtag<T> {
  data: T;
  etag: string | undefined;
}

type Query = Record<string, string | number | boolean | null | undefined>;

interface Call {
  query?: Query | undefined;
  body?: unknown;
  headers?: Record<string, string>;
}

function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "string" &&
    typeof (value as { request_id?: unknown }).request_id === "string"
  );
}

export class RegassistClient {
  private readonly baseUrl: string;
  private readonly token: TokenSource | undefined;
  private readonly fetchFn: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token;
    this.fetchFn = options.fetch ?? fetch;
  }

  /** Sends one request; a non-2xx answer throws `RegassistError`. */
  async raw(method: string, path: string, call: Call = {}): Promise<Response> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { Accept: "application/json", ...call.headers };
    const token = typeof this.token === "function" ? await this.token() : this.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (call.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(call.body);
    }
    const response = await this.fetchFn(url, { method, headers, body });
    if (!response.ok) {
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const errorBody: ErrorBody = isErrorBody(parsed)
        ? parsed
        : {
            code: "internal_error",
            message: text.slice(0, 200) || response.statusText,
            request_id: response.headers.get("x-request-id") ?? "",
          };
      const retry = response.headers.get("retry-after");
      throw new RegassistError(response.status, errorBody, retry ? Number(retry) : undefined);
    }
    return response;
  }

  private async json<T>(method: string, path: string, call: Call = {}): Promise<T> {
    return (await (await this.raw(method, path, call)).json()) as T;
  }

  private async page<T>(path: string, query?: Query): Promise<Page<T>> {
    const response = await this.raw("GET", path, { query });
    const items = (await response.json()) as T[];
    const header = response.headers.get("x-total-count");
    return { items, total: header === null ? items.length : Number(header) };
  }

  private async etagged<T>(method: string, path: string, call: Call = {}): Promise<WithEtag<T>> {
    const response = await this.raw(method, path, call);
    return { data: (await response.json()) as T, etag: response.headers.get("etag") ?? undefined };
  }

  // --- users ---------------------------------------------------------------------------------

  getCurrentUser(): Promise<Schemas["User"]> {
    return this.json("GET", "/api/users/me");
  }

  // --- projects ------------------------------------------------------------------------------

  listProjects(query: QueryOf<"/api/projects", "get"> = {}): Promise<Page<Project>> {
    return this.page("/api/projects", query);
  }

  /** Every project, page by page, until `X-Total-Count` items were read. */
  async *allProjects(
    query: Omit<QueryOf<"/api/projects", "get">, "offset"> = {},
  ): AsyncGenerator<Project> {
    const limit = query.limit ?? 50;
    for (let offset = 0; ; offset += limit) {
      const page = await this.listProjects({ ...query, limit, offset });
      yield* page.items;
      if (page.items.length === 0 || offset + page.items.length >= page.total) return;
    }
  }

  createProject(body: CreateProject): Promise<WithEtag<Project>> {
    return this.etagged("POST", "/api/projects", { body });
  }

  getProject(id: number): Promise<WithEtag<Project>> {
    return this.etagged("GET", `/api/projects/${id}`);
  }

  /** PATCH; pass the ETag last read to refuse overwriting someone else's change (412). */
  updateProject(id: number, patch: UpdateProject, ifMatch?: string): Promise<WithEtag<Project>> {
    const headers: Record<string, string> = ifMatch ? { "If-Match": ifMatch } : {};
    return this.etagged("PATCH", `/api/projects/${id}`, { body: patch, headers });
  }

  deleteProject(id: number, reason: string, ifMatch?: string): Promise<Schemas["Message"]> {
    const headers: Record<string, string> = { "X-Change-Reason": reason };
    if (ifMatch) headers["If-Match"] = ifMatch;
    return this.json("DELETE", `/api/projects/${id}`, { headers });
  }

  getProjectDashboard(id: number): Promise<Schemas["Dashboard"]> {
    return this.json("GET", `/api/projects/${id}/dashboard`);
  }

  exportProject(id: number): Promise<Schemas["ProjectExport"]> {
    return this.json("GET", `/api/projects/${id}/export`, { query: { format: "json" } });
  }

  async exportProjectCsv(id: number): Promise<string> {
    const response = await this.raw("GET", `/api/projects/${id}/export`, {
      query: { format: "csv" },
      headers: { Accept: "text/csv" },
    });
    return response.text();
  }

  // --- classification ------------------------------------------------------------------------

  suggestProductCodes(
    query: QueryOf<"/api/classification/suggest", "get">,
  ): Promise<Schemas["Suggestions"]> {
    return this.json("GET", "/api/classification/suggest", { query });
  }

  getProductCode(code: string): Promise<Schemas["ProductCode"]> {
    return this.json("GET", `/api/classification/product-codes/${encodeURIComponent(code)}`);
  }

  classifyProject(id: number): Promise<Schemas["ClassificationStarted"]> {
    return this.json("POST", `/api/projects/${id}/classification/start`);
  }

  // --- predicates ----------------------------------------------------------------------------

  searchPredicates(
    query: QueryOf<"/api/predicates/search", "get">,
  ): Promise<Schemas["SearchResponse"]> {
    return this.json("GET", "/api/predicates/search", { query });
  }

  searchProjectPredicates(
    id: number,
    body: Schemas["ProjectSearchBody"] = {},
  ): Promise<Schemas["ProjectSearchResponse"]> {
    return this.json("POST", `/api/projects/${id}/predicates/search`, { body });
  }

  listProjectPredicates(id: number): Promise<Page<PredicateDevice>> {
    return this.page(`/api/projects/${id}/predicates`);
  }

  selectPredicate(id: number, predicateId: number, selected = true): Promise<PredicateDevice> {
    const body: Schemas["SelectPredicate"] = { is_selected: selected };
    return this.json("PATCH", `/api/projects/${id}/predicates/${predicateId}`, { body });
  }

  compareProjectPredicate(id: number, predicateId: number): Promise<Schemas["Comparison"]> {
    return this.json("GET", `/api/projects/${id}/predicates/${predicateId}/comparison`);
  }

  // --- audit trail ---------------------------------------------------------------------------

  listProjectAuditEvents(
    projectId: number,
    query: Omit<QueryOf<"/api/audit/trail/{project_id}", "get">, "project_id"> = {},
  ): Promise<Schemas["AuditPage"]> {
    return this.json("GET", `/api/audit/trail/${projectId}`, { query });
  }

  /** JSON export with the chain's verification result. */
  exportAuditTrail(body: Omit<Schemas["ExportRequest"], "format">): Promise<Schemas["AuditExport"]> {
    return this.json("POST", "/api/audit/export", { body: { ...body, format: "json" } });
  }

  /** Recomputes one project's chain (auditor, admin). */
  verifyProjectAuditTrail(projectId: number): Promise<Schemas["Verification"]> {
    return this.json("GET", `/api/audit/integrity/${projectId}`);
  }

  /** Recomputes the whole chain (auditor, admin). */
  verifyAuditTrail(): Promise<Schemas["Verification"]> {
    return this.json("GET", "/api/audit/verify");
  }
}
