/**
 * A tiny client of mspbots-mfa written the way the MSPbots frontend would write it, typed
 * only by `schema.d.ts`, which openapi-typescript generates from openapi/openapi.json
 * (.ci/typescript.sh). It is never run: `tsc --strict` accepting it is the proof that the
 * spec makes a usable client. A field renamed, a response or status dropped, a union of
 * sign-in outcomes lost in the spec breaks this build.
 */
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];

const mfa = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Every error is RFC 9457 problem+json with a stable `code`. */
export class MfaError extends Error {
  constructor(
    readonly problem: Problem,
    readonly retryAfterSeconds?: number,
  ) {
    super(`${problem.code}: ${problem.detail}`);
  }
}

function fail(problem: Problem, response: Response): never {
  const retryAfter = response.headers.get("Retry-After");
  throw retryAfter === null ? new MfaError(problem) : new MfaError(problem, Number(retryAfter));
}

/** What the browser shows after the password step. */
export type NextStep =
  | { kind: "signed_in"; accessToken: string; expiresInSeconds: number }
  | { kind: "setup_mfa" | "enter_code"; loginId: string; mfaToken: string; expiresAt: Date };

/** The login backend (service key): the password was right, what happens next? */
export async function startLogin(serviceKey: string, body: Schemas["StartLogin"]): Promise<NextStep> {
  const { data, error, response } = await mfa.POST("/v1/logins", { headers: bearer(serviceKey), body });
  if (error) fail(error, response);
  switch (data.status) {
    case "authenticated":
      return { kind: "signed_in", accessToken: data.access_token, expiresInSeconds: data.expires_in };
    case "enrollment_required":
    case "verification_required":
      return {
        kind: data.status === "enrollment_required" ? "setup_mfa" : "enter_code",
        loginId: data.login_id,
        mfaToken: data.mfa_token,
        expiresAt: new Date(data.expires_at),
      };
    default:
      return data satisfies never; // a new outcome in the spec must be handled here
  }
}

/** "Enter the code from your authenticator app": the browser, with the login's mfa token. */
export async function verify(loginId: string, mfaToken: string, code: string): Promise<string> {
  const { data, error, response } = await mfa.POST("/v1/logins/{login_id}/verify", {
    params: { path: { login_id: loginId } },
    headers: bearer(mfaToken),
    body: { code },
  });
  if (error) fail(error, response); // e.g. invalid_code, code_reused, too_many_attempts
  const token: string = data.access_token;
  return token;
}

/** The "2-factor Authentication" page of a tenant admin: the policy and its ETag. */
export async function readPolicy(accessToken: string, tenantId: string) {
  const { data, error, response } = await mfa.GET("/v1/tenants/{tenant_id}/policy", {
    params: { path: { tenant_id: tenantId } },
    headers: bearer(accessToken),
  });
  if (error) fail(error, response);
  const surfaces: ("app" | "portal")[] = data.surfaces;
  return { enforced: data.enforce_mfa, surfaces, policy: data, etag: response.headers.get("ETag") ?? "" };
}

/** The switch itself: turn 2FA on, with If-Match and (if asked for) a step-up code. */
export async function enforce2fa(accessToken: string, tenantId: string, etag: string, code?: string) {
  const header = code === undefined ? { "If-Match": etag } : { "If-Match": etag, "X-MFA-Code": code };
  const { data, error, response } = await mfa.PUT("/v1/tenants/{tenant_id}/policy", {
    params: { path: { tenant_id: tenantId }, header },
    headers: bearer(accessToken),
    body: { enforce_mfa: true },
  });
  if (error) fail(error, response); // step_up_required: ask for a code and call again
  return data;
}
