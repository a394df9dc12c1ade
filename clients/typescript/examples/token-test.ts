// The frontend sign-in, tested against a running regassist: a token minted by the example route
// (`nextauth-token-route.ts`, with `jose`) is accepted; one for another audience, another
// issuer, signed with another secret, or expired is refused with the one error body; CORS lets
// the configured frontend origin in. Run by `scripts/client-test.sh`:
//
//   REGASSIST_URL=... JWT_SECRET=... JWT_ISSUER=... JWT_AUDIENCE=... FRONTEND_ORIGIN=... \
//     node --test dist/examples/token-test.js

import assert from "node:assert/strict";
import { test } from "node:test";

import { SignJWT } from "jose";

import { RegassistClient, RegassistError } from "../src/index.js";
import { makeTokenRoute, mintToken, settingsFromEnv, type SessionUser } from "./nextauth-token-route.js";

const baseUrl = process.env.REGASSIST_URL ?? "http://127.0.0.1:8000";
const settings = settingsFromEnv();
const origin = process.env.FRONTEND_ORIGIN ?? "http://localhost:3000";
const person: SessionUser = {
  id: `10876${Date.now()}`,
  email: `ada.${Date.now()}@example.com`,
  name: "Ada Lovelace",
};

async function tokenFromRoute(user: SessionUser | null): Promise<Response> {
  const route = makeTokenRoute(async () => user, () => settings);
  return route(new Request("http://localhost:3000/api/regassist-token"));
}

function refusedWith(message: string) {
  return (e: unknown) =>
    e instanceof RegassistError &&
    e.status === 401 &&
    e.code === "unauthorized" &&
    e.requestId.length > 0 &&
    e.message.includes(message);
}

test("the route's token signs the person in; the first one provisions the user", async () => {
  const response = await tokenFromRoute(person);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("cache-control"), "no-store");
  const { token, expires_in } = (await response.json()) as { token: string; expires_in: number };
  assert.equal(expires_in, 300);
  const me = await new RegassistClient({ baseUrl, token }).getCurrentUser();
  assert.equal(me.email, person.email);
  assert.equal(me.name, person.name);
  assert.equal(me.role, "user");
  // The same person again is the same user, not a second one.
  const again = await new RegassistClient({ baseUrl, token: () => mintToken(person, settings) }).getCurrentUser();
  assert.equal(again.id, me.id);
});

test("without a session the route answers 401 and mints nothing", async () => {
  const response = await tokenFromRoute(null);
  assert.equal(response.status, 401);
});

test("a token for another audience is refused", async () => {
  const token = await mintToken(person, { ...settings, audience: "some-other-api" });
  await assert.rejects(
    new RegassistClient({ baseUrl, token }).getCurrentUser(),
    refusedWith("audience"),
  );
});

test("a token from another issuer is refused", async () => {
  const token = await mintToken(person, { ...settings, issuer: "https://evil.example" });
  await assert.rejects(new RegassistClient({ baseUrl, token }).getCurrentUser(), refusedWith("issuer"));
});

test("a token signed with another secret is refused", async () => {
  const token = await mintToken(person, { ...settings, secret: "x".repeat(48) });
  await assert.rejects(
    new RegassistClient({ baseUrl, token }).getCurrentUser(),
    refusedWith("signature"),
  );
});

test("an expired token is refused", async () => {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ email: person.email })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(`google:${person.id}`)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt(now - 3600)
    .setExpirationTime(now - 600)
    .sign(new TextEncoder().encode(settings.secret));
  await assert.rejects(new RegassistClient({ baseUrl, token }).getCurrentUser(), refusedWith("expired"));
});

test("CORS: the frontend's origin may call with a bearer token; another origin may not", async () => {
  const preflight = (from: string) =>
    fetch(`${baseUrl}/api/users/me`, {
      method: "OPTIONS",
      headers: {
        Origin: from,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
      },
    });
  const allowed = await preflight(origin);
  assert.equal(allowed.headers.get("access-control-allow-origin"), origin);
  assert.match(allowed.headers.get("access-control-allow-headers") ?? "", /authorization/i);
  const other = await preflight("https://elsewhere.example");
  assert.equal(other.headers.get("access-control-allow-origin"), null);
});
