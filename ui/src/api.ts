// The API client of the UI: same-origin fetch with the session cookie,
// the CSRF token (kept in memory only) on requests that change state, and
// the server's {code, message} errors turned into ApiError.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const CSRF_HEADER = "X-Cleanroom-CSRF";

let csrfToken = "";
let onSignedOut: () => void = () => {};

/** setCSRF sets the token sent on requests that change state. */
export function setCSRF(token: string) {
  csrfToken = token;
}

/** csrfHeaders returns the headers a state-changing request needs. */
export function csrfHeaders(): Record<string, string> {
  return csrfToken ? { [CSRF_HEADER]: csrfToken } : {};
}

/** whenSignedOut registers what to do when the server ends the session. */
export function whenSignedOut(f: () => void) {
  onSignedOut = f;
}

/** errorFrom turns an error response into an ApiError in the server's words. */
export async function errorFrom(resp: Response): Promise<ApiError> {
  let code = "internal";
  let message = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && typeof body.message === "string") {
      code = body.code;
      message = body.message;
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(resp.status, code, message);
}

/** request calls the API and returns the response, throwing ApiError. */
export async function request(method: string, path: string, body?: unknown, opts: { raw?: BodyInit; signal?: AbortSignal; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(method === "GET" || method === "HEAD" ? {} : csrfHeaders()), ...opts.headers };
  let payload: BodyInit | undefined = opts.raw;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  } else if (opts.raw !== undefined) {
    headers["Content-Type"] = "application/octet-stream";
  }
  let resp: Response;
  try {
    resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin", signal: opts.signal });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(0, "network", "the server cannot be reached; check your connection and try again");
  }
  if (!resp.ok) {
    const err = await errorFrom(resp);
    if (resp.status === 401 && path !== "/api/v1/session") onSignedOut();
    throw err;
  }
  return resp;
}

/** api calls the API and decodes its JSON answer (undefined for 204). */
export async function api<T>(method: string, path: string, body?: unknown, opts: { raw?: BodyInit; signal?: AbortSignal } = {}): Promise<T> {
  const resp = await request(method, path, body, opts);
  if (resp.status === 204) return undefined as T;
  return (await resp.json()) as T;
}

/** errorText returns what to show for an error: the server's message. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
