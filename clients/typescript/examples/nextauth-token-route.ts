// A Next.js (App Router) route that turns the NextAuth session of the signed-in person into the
// short-lived HS256 JWT that regassist verifies. The browser never sees JWT_SECRET: it calls this
// route (same origin, session cookie), gets a token valid for a few minutes, and sends it to
// regassist as `Authorization: Bearer <token>`.
//
// In the Next.js app, `app/api/regassist-token/route.ts`:
//
//   import { getServerSession } from "next-auth";
//   import { authOptions } from "@/lib/auth";
//   import { makeTokenRoute } from "@regassist/client/examples/nextauth-token-route";
//   export const GET = makeTokenRoute(async () => {
//     const session = await getServerSession(authOptions);
//     // With the Google provider, `token.sub` is Google's stable account id; copy it into the
//     // session in the `session` callback (session.user.id = token.sub).
//     return session?.user ? { id: session.user.id, email: session.user.email, name: session.user.name } : null;
//   });
//
// This file has no Next.js import so that CI can run it under plain Node (`token-test.ts`).

import { SignJWT } from "jose";

/** Who is signed in, as the session callback exposes it. */
export interface SessionUser {
  /** The identity provider's stable id for the person (NextAuth `token.sub`). */
  id: string;
  email: string;
  name?: string | null;
}

/** The settings regassist is started with (the same values on both sides). */
export interface TokenSettings {
  /** `JWT_SECRET`: at least 32 bytes, shared by the frontend's server and regassist only. */
  secret: string;
  /** `JWT_ISSUER` (e.g. the frontend's URL); regassist refuses other issuers when it is set. */
  issuer: string;
  /** `JWT_AUDIENCE` (e.g. `regassist`); regassist refuses other audiences when it is set. */
  audience: string;
  /** Lifetime in seconds; short, because a JWT cannot be revoked. Default 300. */
  lifetimeSecs?: number;
  /** Prefix of `sub`, naming the identity provider, so ids of two providers never collide. */
  provider?: string;
}

/** Reads the settings from the frontend's environment (the names regassist uses). */
export function settingsFromEnv(env: Record<string, string | undefined> = process.env): TokenSettings {
  const secret = env.JWT_SECRET;
  const issuer = env.JWT_ISSUER;
  const audience = env.JWT_AUDIENCE;
  if (!secret || secret.length < 32) throw new Error("JWT_SECRET must be set (at least 32 bytes)");
  if (!issuer || !audience) throw new Error("JWT_ISSUER and JWT_AUDIENCE must be set");
  return { secret, issuer, audience };
}

/** Signs a token with the claims regassist reads: `sub` (the user's stable subject; the first
 * valid token provisions the user), `email`, `name`, and `iss`, `aud`, `iat`, `exp`. */
export async function mintToken(user: SessionUser, settings: TokenSettings): Promise<string> {
  const lifetime = settings.lifetimeSecs ?? 300;
  const provider = settings.provider ?? "google";
  return new SignJWT({ email: user.email, ...(user.name ? { name: user.name } : {}) })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(`${provider}:${user.id}`)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt()
    .setExpirationTime(`${lifetime}s`)
    .sign(new TextEncoder().encode(settings.secret));
}

/** The route handler: 401 without a session, else `{ token, expires_in }`, never cached. */
export function makeTokenRoute(
  getUser: () => Promise<SessionUser | null>,
  settings: () => TokenSettings = () => settingsFromEnv(),
): (request: Request) => Promise<Response> {
  return async () => {
    const user = await getUser();
    const headers = { "Content-Type": "application/json", "Cache-Control": "no-store" };
    if (!user) {
      return new Response(JSON.stringify({ error: "not signed in" }), { status: 401, headers });
    }
    const s = settings();
    const token = await mintToken(user, s);
    return new Response(JSON.stringify({ token, expires_in: s.lifetimeSecs ?? 300 }), {
      status: 200,
      headers,
    });
  };
}

/** In the browser: a token source for `RegassistClient` that fetches from the route above and
 * renews a minute before expiry. */
export function browserTokenSource(route = "/api/regassist-token"): () => Promise<string> {
  let cached: { token: string; until: number } | undefined;
  return async () => {
    if (cached && Date.now() < cached.until) return cached.token;
    const response = await fetch(route, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`sign in first (${response.status})`);
    const { token, expires_in } = (await response.json()) as { token: string; expires_in: number };
    cached = { token, until: Date.now() + Math.max(0, expires_in - 60) * 1000 };
    return token;
  };
}
