// The smoke program: the main flow of a regulatory-affairs user, through the typed client,
// against a running regassist. Run by `scripts/client-test.sh` (and so `.ci/run`):
//
//   REGASSIST_URL=http://127.0.0.1:8000 REGASSIST_TOKEN=rk_... node dist/examples/smoke.js
//
// The token must belong to an auditor or admin (the last step verifies the chain). Uses the
// node test runner so CI reads its closing "pass/fail" lines.

import assert from "node:assert/strict";
import { test } from "node:test";

import { RegassistClient, RegassistError } from "../src/index.js";

const baseUrl = process.env.REGASSIST_URL ?? "http://127.0.0.1:8000";
const token = process.env.REGASSIST_TOKEN;
if (!token) throw new Error("set REGASSIST_TOKEN to an auditor's or admin's API key");
const client = new RegassistClient({ baseUrl, token });

test("the main flow: project, search, select, compare, classify, export, audit", async (t) => {
  const me = await client.getCurrentUser();
  assert.ok(me.role === "admin" || me.role === "auditor", `role ${me.role}`);

  const name = `Smoke pulse oximeter ${Date.now()}`;
  const created = await client.createProject({
    name,
    device_type: "pulse oximeter",
    intended_use: "Spot-check measurement of functional oxygen saturation (SpO2) and pulse rate",
    description: "Fingertip reflectance pulse oximeter",
    product_code: "DQA",
    priority: "high",
    tags: ["smoke"],
  });
  const project = created.data;
  assert.equal(project.name, name);
  assert.equal(project.status, "draft");
  assert.equal(created.etag, `"${project.version}"`);

  await t.test("paging reads X-Total-Count", async () => {
    const page = await client.listProjects({ limit: 1 });
    assert.ok(page.total >= 1);
    assert.equal(page.items.length, 1);
    let seen = 0;
    for await (const p of client.allProjects({ limit: 2 })) {
      seen += p.id === project.id ? 1 : 0;
    }
    assert.equal(seen, 1, "allProjects yields the new project exactly once");
  });

  await t.test("an ETag guards an update; a stale one is refused with 412", async () => {
    const updated = await client.updateProject(project.id, { status: "in_progress" }, created.etag);
    assert.equal(updated.data.status, "in_progress");
    await assert.rejects(
      client.updateProject(project.id, { priority: "low" }, created.etag),
      (e: unknown) =>
        e instanceof RegassistError && e.status === 412 && e.code === "precondition_failed",
    );
  });

  await t.test("a bad field is a typed validation error carrying the request id", async () => {
    await assert.rejects(
      client.createProject({ name: "   " }),
      (e: unknown) =>
        e instanceof RegassistError &&
        e.status === 422 &&
        e.code === "validation_failed" &&
        e.requestId.length > 0 &&
        e.fields?.name !== undefined,
    );
  });

  await t.test("search predicates (the FDA mirror)", async () => {
    const found = await client.searchPredicates({ q: "pulse oximeter", product_code: "DQA", limit: 5 });
    assert.ok(found.results.length > 0, "some DQA clearances");
    assert.ok(found.results.every((r) => r.product_code === "DQA"));
  });

  const stored = await client.searchProjectPredicates(project.id, { limit: 5 });
  assert.ok(stored.results.length > 0, stored.message);
  const list = await client.listProjectPredicates(project.id);
  assert.equal(list.total, list.items.length);
  const first = list.items[0];
  assert.ok(first, "a stored candidate");

  const selected = await client.selectPredicate(project.id, first.id);
  assert.equal(selected.is_selected, true);

  const comparison = await client.compareProjectPredicate(project.id, first.id);
  assert.ok(comparison.rows.length > 0);
  assert.ok(["low", "medium", "high"].includes(comparison.risk_assessment.level));

  const classification = await client.classifyProject(project.id);
  assert.equal(classification.classification.product_code, "DQA");
  assert.equal(classification.classification.device_class, "2");

  const exported = await client.exportProject(project.id);
  assert.equal(exported.project.id, project.id);
  assert.ok(exported.predicate_devices.some((p) => p.id === first.id && p.is_selected));
  const csv = await client.exportProjectCsv(project.id);
  assert.ok(csv.includes(first.k_number));

  await t.test("the audit trail records each change and verifies", async () => {
    const trail = await client.listProjectAuditEvents(project.id, { limit: 100 });
    const actions = trail.audit_entries.map((e) => e.action);
    for (const action of ["project.create", "project.update", "predicate.select"]) {
      assert.ok(actions.includes(action), `${action} in ${actions.join(", ")}`);
    }
    const auditExport = await client.exportAuditTrail({ project_id: project.id });
    assert.equal(auditExport.verification.is_valid, true, auditExport.verification.problem ?? "");
    assert.equal(auditExport.entries.length, trail.total_count);
    const projectCheck = await client.verifyProjectAuditTrail(project.id);
    assert.equal(projectCheck.is_valid, true, projectCheck.problem ?? "");
    const whole = await client.verifyAuditTrail();
    assert.equal(whole.is_valid, true, whole.problem ?? "");
    assert.ok(whole.verified_entries >= trail.total_count);
  });

  await t.test("someone else's project is a 404, not a 403", async () => {
    await assert.rejects(
      client.getProject(2_000_000_000),
      (e: unknown) => e instanceof RegassistError && e.status === 404 && e.code === "not_found",
    );
  });
});
