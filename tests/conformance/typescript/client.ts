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

/** What the browser shows after the password step. `graceEndsAt`: "Set up later" may be offered. */
export type NextStep =
  | { kind: "signed_in"; accessToken: string; expiresInSeconds: number; remembered: boolean }
  | { kind: "setup_mfa" | "enter_code"; loginId: string; mfaToken: string; expiresAt: Date; graceEndsAt: Date | undefined };

/** The login backend (service key): the password was right, what happens next? */
export async function startLogin(serviceKey: string, body: Schemas["StartLogin"]): Promise<NextStep> {
  const { data, error, response } = await mfa.POST("/v1/logins", { headers: bearer(serviceKey), body });
  if (error) fail(error, response);
  switch (data.status) {
    case "authenticated":
      return {
        kind: "signed_in",
        accessToken: data.access_token,
        expiresInSeconds: data.expires_in,
        remembered: data.mfa === "remembered",
      };
    case "enrollment_required":
      return {
        kind: "setup_mfa",
        loginId: data.login_id,
        mfaToken: data.mfa_token,
        expiresAt: new Date(data.expires_at),
        graceEndsAt: data.grace_ends_at === undefined ? undefined : new Date(data.grace_ends_at),
      };
    case "verification_required":
      return {
        kind: "enter_code",
        loginId: data.login_id,
        mfaToken: data.mfa_token,
        expiresAt: new Date(data.expires_at),
        graceEndsAt: undefined,
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

/*
 * Every other operation of the spec, each called once the way its caller would; the CI
 * script fails when an operation of openapi.json is called nowhere in this file.
 */

/** Header parameters of a sensitive call: the step-up code when the user typed one. */
const stepUp = (code?: string) => (code === undefined ? {} : { "X-MFA-Code": code });

/** Operations: liveness, readiness, metrics, the keys and the document itself. */
export async function operations() {
  const health: Schemas["Health"] | undefined = (await mfa.GET("/healthz")).data;
  const ready = await mfa.GET("/readyz");
  if (ready.error) fail(ready.error, ready.response); // unavailable, with Retry-After
  const metrics: string | undefined = (await mfa.GET("/metrics")).data;
  const jwks = (await mfa.GET("/.well-known/jwks.json")).data;
  const spec = (await mfa.GET("/openapi.json")).data;
  return { health, ready: ready.data.status, metrics, jwks, spec };
}

/** The "Set Up Authentication" window of a sign-in: the QR code, then the first code. */
export async function setUpAtSignIn(loginId: string, mfaToken: string, code: string) {
  const path = { login_id: loginId };
  const state = await mfa.GET("/v1/logins/{login_id}", { params: { path }, headers: bearer(mfaToken) });
  if (state.error) fail(state.error, state.response);
  const attemptsLeft: number = state.data.attempts_left;
  const rememberDays: number = state.data.remember_device_days; // 0: no "don't ask again"
  const graceEndsAt: string | undefined = state.data.grace_ends_at; // "Set up later" until then
  const material = await mfa.POST("/v1/logins/{login_id}/totp-enrollment", {
    params: { path },
    headers: bearer(mfaToken),
  });
  if (material.error) fail(material.error, material.response);
  const qr: string = material.data.qr_svg;
  const done = await mfa.POST("/v1/logins/{login_id}/totp-enrollment/confirm", {
    params: { path },
    headers: bearer(mfaToken),
    body: { code },
  });
  if (done.error) fail(done.error, done.response);
  const recoveryCodes: string[] = done.data.recovery_codes;
  return { attemptsLeft, rememberDays, graceEndsAt, qr, accessToken: done.data.access_token, recoveryCodes };
}

/** "Lost your phone?": sign in with a recovery code instead. */
export async function recover(loginId: string, mfaToken: string, recoveryCode: string) {
  const { data, error, response } = await mfa.POST("/v1/logins/{login_id}/recover", {
    params: { path: { login_id: loginId } },
    headers: bearer(mfaToken),
    body: { recovery_code: recoveryCode },
  });
  if (error) fail(error, response);
  const left: number = data.recovery_codes_remaining;
  return { accessToken: data.access_token, left };
}

/** Step-up once, then several sensitive calls with the fresh token (no X-MFA-Code). */
export async function stepUpOnce(accessToken: string, code: string) {
  const fresh = await mfa.POST("/v1/me/reauthenticate", {
    headers: bearer(accessToken),
    body: { code },
  });
  if (fresh.error) fail(fresh.error, fresh.response); // invalid_code, code_reused, too_many_attempts
  const token: string = fresh.data.access_token;
  const expiresIn: number = fresh.data.expires_in;
  const me = await mfa.GET("/v1/me", { headers: bearer(token) });
  if (me.error) fail(me.error, me.response);
  const rememberDays: number = me.data.tenant.remember_device_days;
  const codes = await mfa.POST("/v1/me/recovery-codes", { headers: bearer(token) });
  if (codes.error) fail(codes.error, codes.response);
  return { token, expiresIn, rememberDays, codes: codes.data.recovery_codes };
}

/** The user's own security page: status, (re-)enrollment, new recovery codes, removal. */
export async function mySecurity(accessToken: string, code?: string) {
  const me = await mfa.GET("/v1/me", { headers: bearer(accessToken) });
  if (me.error) fail(me.error, me.response);
  const enrolled = await mfa.POST("/v1/me/totp-enrollment", {
    params: { header: stepUp(code) },
    headers: bearer(accessToken),
  });
  if (enrolled.error) fail(enrolled.error, enrolled.response);
  const confirmed = await mfa.POST("/v1/me/totp-enrollment/confirm", {
    headers: bearer(accessToken),
    body: { code: code ?? "000000" },
  });
  if (confirmed.error) fail(confirmed.error, confirmed.response);
  const codes = await mfa.POST("/v1/me/recovery-codes", {
    params: { header: stepUp(code) },
    headers: bearer(accessToken),
  });
  if (codes.error) fail(codes.error, codes.response);
  const removed = await mfa.DELETE("/v1/me/totp", {
    params: { header: stepUp(code) },
    headers: bearer(accessToken),
  });
  if (removed.error) fail(removed.error, removed.response); // mfa_enforced when required
  return { me: me.data, secret: enrolled.data.secret, token: confirmed.data.access_token, codes: codes.data.recovery_codes };
}

/** The admin's user list and audit trail, one page each. */
export async function adminPages(accessToken: string, tenantId: string, cursor?: string) {
  const users = await mfa.GET("/v1/tenants/{tenant_id}/users", {
    params: { path: { tenant_id: tenantId }, query: cursor === undefined ? { mfa: "not_enrolled" } : { cursor } },
    headers: bearer(accessToken),
  });
  if (users.error) fail(users.error, users.response);
  const events = await mfa.GET("/v1/tenants/{tenant_id}/audit-events", {
    params: { path: { tenant_id: tenantId }, query: { limit: 50 } },
    headers: bearer(accessToken),
  });
  if (events.error) fail(events.error, events.response);
  const locked: string[] = users.data.items.filter((u) => u.locked_until !== null).map((u) => u.user_id);
  return { locked, next: users.data.next_cursor, events: events.data.items.map((e) => e.type) };
}

/** The admin's actions on one user: unlock, reset a lost phone, offboard. */
export async function adminActions(accessToken: string, tenantId: string, userId: string, code?: string) {
  const path = { tenant_id: tenantId, user_id: userId };
  const unlocked = await mfa.POST("/v1/tenants/{tenant_id}/users/{user_id}/unlock", {
    params: { path, header: stepUp(code) },
    headers: bearer(accessToken),
  });
  if (unlocked.error) fail(unlocked.error, unlocked.response);
  const reset = await mfa.DELETE("/v1/tenants/{tenant_id}/users/{user_id}/totp", {
    params: { path, header: stepUp(code) },
    headers: bearer(accessToken),
  });
  if (reset.error) fail(reset.error, reset.response);
  const erased = await mfa.DELETE("/v1/tenants/{tenant_id}/users/{user_id}", {
    params: { path },
    headers: bearer(accessToken),
  });
  if (erased.error) fail(erased.error, erased.response);
  return erased.response.status === 204;
}

/**
 * "Remember this browser" (login backend, service key): the device token lives in an
 * HttpOnly, Secure, SameSite cookie of the login backend's own and goes with the password
 * step; a `remembered` answer skips the code. After a code typed with the box ticked, the
 * new token (if the tenant allows remembering) replaces the cookie.
 */
export async function rememberThisBrowser(
  serviceKey: string,
  body: Schemas["StartLogin"],
  cookieToken: string | undefined,
  askCode: (loginId: string, mfaToken: string) => Promise<string>,
) {
  const started = await mfa.POST("/v1/logins", {
    headers: bearer(serviceKey),
    body: cookieToken === undefined ? body : { ...body, device_token: cookieToken },
  });
  if (started.error) fail(started.error, started.response);
  if (started.data.status === "authenticated") {
    return { accessToken: started.data.access_token, remembered: started.data.mfa === "remembered", newCookie: cookieToken };
  }
  if (started.data.status !== "verification_required") throw new Error("enrollment first");
  const { login_id, mfa_token } = started.data;
  const code = await askCode(login_id, mfa_token);
  const done = await mfa.POST("/v1/logins/{login_id}/verify", {
    params: { path: { login_id } },
    headers: bearer(mfa_token),
    body: { code, remember_device: true, device_name: "Work laptop" },
  });
  if (done.error) fail(done.error, done.response);
  const newCookie: string | undefined = done.data.device_token;
  const cookieExpires: Date | undefined =
    done.data.device_expires_at === undefined ? undefined : new Date(done.data.device_expires_at);
  return { accessToken: done.data.access_token, remembered: false, newCookie, cookieExpires };
}

/** "Set up later (N days left)": postpone enrollment while the grace runs. */
export async function setUpLater(loginId: string, mfaToken: string, graceEndsAt: Date, now: Date) {
  const daysLeft = Math.max(0, Math.ceil((graceEndsAt.getTime() - now.getTime()) / 86_400_000));
  const label = `Set up later (${daysLeft} day${daysLeft === 1 ? "" : "s"} left)`;
  const { data, error, response } = await mfa.POST("/v1/logins/{login_id}/skip-enrollment", {
    params: { path: { login_id: loginId } },
    headers: bearer(mfaToken),
  });
  if (error) fail(error, response); // invalid_state: the grace is over, enroll now
  const mfaKind: "grace" | "not_required" | "exempt" | "remembered" = data.mfa;
  return { label, accessToken: data.access_token, mfaKind, graceEndsAt: new Date(data.grace_ends_at) };
}

/** The user's "Remembered browsers" page: list, forget one, forget all. */
export async function myDevices(accessToken: string) {
  const list = await mfa.GET("/v1/me/devices", { headers: bearer(accessToken) });
  if (list.error) fail(list.error, list.response);
  const first = list.data.items[0];
  if (first !== undefined) {
    const one = await mfa.DELETE("/v1/me/devices/{device_id}", {
      params: { path: { device_id: first.device_id } },
      headers: bearer(accessToken),
    });
    if (one.error) fail(one.error, one.response);
  }
  const all = await mfa.DELETE("/v1/me/devices", { headers: bearer(accessToken) });
  if (all.error) fail(all.error, all.response);
  return list.data.items.map((d) => ({ name: d.name, lastIp: d.last_ip, expires: new Date(d.expires_at) }));
}

/** The admin dashboard: "how far is my tenant with 2FA?", and a user's remembered browsers. */
export async function adminDashboard(accessToken: string, tenantId: string, userId: string, code?: string) {
  const summary = await mfa.GET("/v1/tenants/{tenant_id}/mfa-summary", {
    params: { path: { tenant_id: tenantId } },
    headers: bearer(accessToken),
  });
  if (summary.error) fail(summary.error, summary.response);
  const overdue = await mfa.GET("/v1/tenants/{tenant_id}/users", {
    params: { path: { tenant_id: tenantId }, query: { mfa: "overdue" } },
    headers: bearer(accessToken),
  });
  if (overdue.error) fail(overdue.error, overdue.response);
  const path = { tenant_id: tenantId, user_id: userId };
  const devices = await mfa.GET("/v1/tenants/{tenant_id}/users/{user_id}/devices", {
    params: { path },
    headers: bearer(accessToken),
  });
  if (devices.error) fail(devices.error, devices.response);
  const revoked = await mfa.DELETE("/v1/tenants/{tenant_id}/users/{user_id}/devices", {
    params: { path, header: stepUp(code) },
    headers: bearer(accessToken),
  });
  if (revoked.error) fail(revoked.error, revoked.response);
  const s = summary.data;
  const percent = s.users === 0 ? 100 : Math.round((100 * s.enrolled) / s.users);
  const graceEnds: (string | null)[] = overdue.data.items.map((u) => u.grace_ends_at);
  return { percent, inGrace: s.in_grace, overdue: s.overdue, devices: devices.data.items.length, graceEnds };
}

/**
 * "Add a second authenticator" on the user's security page (§10): start with a name, scan,
 * confirm with the new app's code, then rename, resynchronise or remove one of them.
 */
export async function secondAuthenticator(accessToken: string, name: string, code: string, stepUpCode?: string) {
  const material = await mfa.POST("/v1/me/factors", {
    params: { header: stepUp(stepUpCode) },
    headers: bearer(accessToken),
    body: { name },
  });
  if (material.error) fail(material.error, material.response); // factor_limit, name_taken, step_up_required
  const factorId: string = material.data.factor_id;
  if (!("qr_svg" in material.data)) throw new Error("an app's material was expected");
  const qr: string = material.data.qr_svg;
  const confirmed = await mfa.POST("/v1/me/factors/{factor_id}/confirm", {
    params: { path: { factor_id: factorId } },
    headers: bearer(accessToken),
    body: { code },
  });
  if (confirmed.error) fail(confirmed.error, confirmed.response);
  const firstCodes: string[] | undefined = confirmed.data.recovery_codes; // only for a first factor
  const listed = await mfa.GET("/v1/me/factors", { headers: bearer(accessToken) });
  if (listed.error) fail(listed.error, listed.response);
  const drifts: number[] = listed.data.items.map((f) => f.drift_seconds ?? 0);
  const renamed = await mfa.PATCH("/v1/me/factors/{factor_id}", {
    params: { path: { factor_id: factorId } },
    headers: bearer(accessToken),
    body: { name: `${name} (work)` },
  });
  if (renamed.error) fail(renamed.error, renamed.response);
  const resynced = await mfa.POST("/v1/me/factors/{factor_id}/resync", {
    params: { path: { factor_id: factorId } },
    headers: bearer(accessToken),
    body: { code1: code, code2: code },
  });
  if (resynced.error) fail(resynced.error, resynced.response); // invalid_code, counted once
  const removed = await mfa.DELETE("/v1/me/factors/{factor_id}", {
    params: { path: { factor_id: factorId }, header: stepUp(stepUpCode) },
    headers: bearer(accessToken),
  });
  if (removed.error) fail(removed.error, removed.response); // mfa_enforced for the last one
  return { qr, firstCodes, drifts, name: renamed.data.name, status: renamed.data.status, token: confirmed.data.access_token };
}

/** "My phone's clock is off": finish the sign-in with two consecutive codes (§11). */
export async function resyncAtSignIn(loginId: string, mfaToken: string, code1: string, code2: string) {
  const { data, error, response } = await mfa.POST("/v1/logins/{login_id}/resync", {
    params: { path: { login_id: loginId } },
    headers: bearer(mfaToken),
    body: { code1, code2 },
  });
  if (error) fail(error, response);
  const driftSeconds: number = data.drift_seconds;
  return { accessToken: data.access_token, driftSeconds };
}

/** The admin's view of one user's authenticators, and removing one (a lost tablet). */
export async function adminFactors(accessToken: string, tenantId: string, userId: string, code?: string) {
  const path = { tenant_id: tenantId, user_id: userId };
  const listed = await mfa.GET("/v1/tenants/{tenant_id}/users/{user_id}/factors", {
    params: { path },
    headers: bearer(accessToken),
  });
  if (listed.error) fail(listed.error, listed.response);
  const first = listed.data.items[0];
  if (first === undefined) return 0;
  const removed = await mfa.DELETE("/v1/tenants/{tenant_id}/users/{user_id}/factors/{factor_id}", {
    params: { path: { ...path, factor_id: first.factor_id }, header: stepUp(code) },
    headers: bearer(accessToken),
  });
  if (removed.error) fail(removed.error, removed.response);
  return listed.data.items.length - 1;
}

/** The admin's webhooks page: subscribe, list, read, change, test, rotate, deliveries, delete. */
export async function adminWebhooks(accessToken: string, tenantId: string, url: string, code?: string) {
  const tenant = { tenant_id: tenantId };
  const created = await mfa.POST("/v1/tenants/{tenant_id}/webhooks", {
    params: { path: tenant, header: stepUp(code) },
    headers: bearer(accessToken),
    body: { url, event_types: ["login.succeeded", "user.locked"], description: "SIEM feed" },
  });
  if (created.error) fail(created.error, created.response); // invalid_request: not https, private
  const secret: string = created.data.secret; // shown once: store it in the receiver
  const path = { tenant_id: tenantId, webhook_id: created.data.webhook_id };
  const listed = await mfa.GET("/v1/tenants/{tenant_id}/webhooks", {
    params: { path: tenant, query: { limit: 50 } },
    headers: bearer(accessToken),
  });
  if (listed.error) fail(listed.error, listed.response);
  const one = await mfa.GET("/v1/tenants/{tenant_id}/webhooks/{webhook_id}", { params: { path }, headers: bearer(accessToken) });
  if (one.error) fail(one.error, one.response);
  const status: "active" | "disabled" = one.data.status;
  const changed = await mfa.PATCH("/v1/tenants/{tenant_id}/webhooks/{webhook_id}", {
    params: { path, header: stepUp(code) },
    headers: bearer(accessToken),
    body: { status: "active", description: null },
  });
  if (changed.error) fail(changed.error, changed.response);
  const test = await mfa.POST("/v1/tenants/{tenant_id}/webhooks/{webhook_id}/test", { params: { path }, headers: bearer(accessToken) });
  if (test.error) fail(test.error, test.response); // invalid_state: disabled
  const rotated = await mfa.POST("/v1/tenants/{tenant_id}/webhooks/{webhook_id}/rotate-secret", {
    params: { path, header: stepUp(code) },
    headers: bearer(accessToken),
  });
  if (rotated.error) fail(rotated.error, rotated.response);
  const deliveries = await mfa.GET("/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries", {
    params: { path, query: { state: "failed" } },
    headers: bearer(accessToken),
  });
  if (deliveries.error) fail(deliveries.error, deliveries.response);
  for (const d of deliveries.data.items) {
    const retried = await mfa.POST("/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", {
      params: { path: { ...path, delivery_id: d.delivery_id } },
      headers: bearer(accessToken),
    });
    if (retried.error) fail(retried.error, retried.response);
  }
  const removed = await mfa.DELETE("/v1/tenants/{tenant_id}/webhooks/{webhook_id}", {
    params: { path, header: stepUp(code) },
    headers: bearer(accessToken),
  });
  if (removed.error) fail(removed.error, removed.response);
  return { secret, status, count: listed.data.items.length, test: test.data.delivery_id, newSecret: rotated.data.secret };
}

/** A passkey (§16): add one from the security page, then sign in with it. The browser's
 * `navigator.credentials` calls are passed in, as `create`/`get` returning `toJSON()`. */
export async function passkeys(
  accessToken: string,
  create: (publicKey: Record<string, unknown>) => Promise<Record<string, unknown>>,
  stepUpCode?: string,
) {
  const started = await mfa.POST("/v1/me/factors", {
    params: { header: stepUp(stepUpCode) },
    headers: bearer(accessToken),
    body: { type: "webauthn", name: "Laptop" },
  });
  if (started.error) fail(started.error, started.response); // factor_type_not_allowed, webauthn_unavailable
  if (!("public_key" in started.data)) throw new Error("creation options were expected");
  const credential = await create(started.data.public_key);
  const confirmed = await mfa.POST("/v1/me/factors/{factor_id}/confirm", {
    params: { path: { factor_id: started.data.factor_id } },
    headers: bearer(accessToken),
    body: { credential },
  });
  if (confirmed.error) fail(confirmed.error, confirmed.response); // invalid_credential, counted
  return { token: confirmed.data.access_token, factor: confirmed.data.factor };
}

/** Sign in with a passkey when `factor_types` holds "webauthn", or register one at "Setup MFA". */
export async function passkeySignIn(
  loginId: string,
  mfaToken: string,
  get: (publicKey: Record<string, unknown>) => Promise<Record<string, unknown>>,
  create: (publicKey: Record<string, unknown>) => Promise<Record<string, unknown>>,
) {
  const path = { login_id: loginId };
  const view = await mfa.GET("/v1/logins/{login_id}", { params: { path }, headers: bearer(mfaToken) });
  if (view.error) fail(view.error, view.response);
  if (view.data.status === "enrollment_required") {
    const started = await mfa.POST("/v1/logins/{login_id}/webauthn-enrollment", {
      params: { path }, headers: bearer(mfaToken), body: {},
    });
    if (started.error) fail(started.error, started.response);
    const credential = await create(started.data.public_key);
    const done = await mfa.POST("/v1/logins/{login_id}/webauthn-enrollment/confirm", {
      params: { path }, headers: bearer(mfaToken), body: { credential },
    });
    if (done.error) fail(done.error, done.response);
    return { accessToken: done.data.access_token, recoveryCodes: done.data.recovery_codes };
  }
  const challenge = await mfa.POST("/v1/logins/{login_id}/webauthn-challenge", {
    params: { path }, headers: bearer(mfaToken),
  });
  if (challenge.error) fail(challenge.error, challenge.response);
  const credential = await get(challenge.data.public_key);
  const done = await mfa.POST("/v1/logins/{login_id}/webauthn", {
    params: { path }, headers: bearer(mfaToken), body: { credential, remember_device: true },
  });
  if (done.error) fail(done.error, done.response); // invalid_credential, counted
  return { accessToken: done.data.access_token, recoveryCodes: [] as string[] };
}

/** "Confirm it's you" with a passkey: a challenge, the browser's assertion, a fresh token. */
export async function stepUpWithPasskey(
  accessToken: string,
  get: (publicKey: Record<string, unknown>) => Promise<Record<string, unknown>>,
) {
  const challenge = await mfa.POST("/v1/me/reauthenticate/webauthn-challenge", {
    headers: bearer(accessToken),
  });
  if (challenge.error) fail(challenge.error, challenge.response); // invalid_state: no passkey
  const credential = await get(challenge.data.public_key);
  const fresh = await mfa.POST("/v1/me/reauthenticate", {
    headers: bearer(accessToken),
    body: { credential },
  });
  if (fresh.error) fail(fresh.error, fresh.response); // invalid_credential, counted
  const token: string = fresh.data.access_token;
  return { token, expiresIn: fresh.data.expires_in };
}
