// Calls to Triplane's HTTP APIs with the key kept for this tab, and errors that say what
// to do about them.

const STORAGE = { user: 'triplane.apiKey', admin: 'triplane.adminKey' };

// Keys live in sessionStorage: gone when the tab closes, never sent anywhere but here.
export function getKey(kind) {
  return sessionStorage.getItem(STORAGE[kind]) || '';
}
export function setKey(kind, key) {
  if (key) sessionStorage.setItem(STORAGE[kind], key);
  else sessionStorage.removeItem(STORAGE[kind]);
}

export class ApiError extends Error {
  constructor(status, message, details = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = details.type || null;
    this.code = details.code || null;
    this.param = details.param || null;
    this.retryAfter = details.retryAfter ?? null; // seconds
    this.requestId = details.requestId || null;
  }
}

// Seconds from a Retry-After header (delay-seconds or an HTTP date); null when absent.
export function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

// An ApiError from a failed response, reading its OpenAI-style error body.
export async function errorFrom(response) {
  let message = `HTTP ${response.status}`;
  let details = {};
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      details = body.error;
    }
  } catch {
    // Not JSON (a proxy's page): keep the status line.
  }
  return new ApiError(response.status, message, {
    ...details,
    retryAfter: parseRetryAfter(response.headers.get('retry-after')),
    requestId: response.headers.get('x-request-id'),
  });
}

// One sentence for people: what went wrong and what to do next.
export function explain(error, { admin = false } = {}) {
  if (error && error.name === 'AbortError') return 'Stopped.';
  if (!(error instanceof ApiError) && !(error instanceof TypeError)) return String(error && error.message ? error.message : error);
  if (!(error instanceof ApiError)) {
    return `Cannot reach the server (${error && error.message ? error.message : error}). ` +
      'Check that Triplane is running and this page\'s address is right, then try again.';
  }
  const what = error.message;
  const id = error.requestId ? ` (request id ${error.requestId})` : '';
  switch (error.status) {
    case 400:
      return `The request was refused: ${what}. Correct ${error.param ? `“${error.param}”` : 'the input'} and try again.`;
    case 401:
      return `The key was not accepted: ${what}. Sign in again with a valid${admin ? ' admin' : ''} key.`;
    case 403:
      return admin
        ? `This key may not use the admin console: ${what}. Sign in with an admin key.`
        : `This key may not do that: ${what}. Choose another model or ask an administrator for access.`;
    case 404:
      return `Not found: ${what}.`;
    case 409:
      return `Conflict: ${what}. Reload to see the current state, then try again.`;
    case 429: {
      const wait = error.retryAfter !== null
        ? `Retry in ${error.retryAfter} second${error.retryAfter === 1 ? '' : 's'}.`
        : 'Wait a moment and retry.';
      return `Rate limit or quota reached: ${what}. ${wait}`;
    }
    case 502:
    case 503:
    case 504:
      return `The service is not ready: ${what}. Retry in a few seconds; if it persists, check the deployment's instances in the admin console${id}.`;
    case 507:
      return `The server's disk is full: ${what}. Free some space and retry.`;
    default:
      return `The server failed: ${what}. Retry; if it persists, look for this in the server log${id}.`;
  }
}

// fetch() with the key; resolves to the Response when it is OK, else throws ApiError.
export async function call(path, { key, method = 'GET', body, signal, headers = {} } = {}) {
  const init = { method, signal, headers: { ...headers } };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await errorFrom(response);
  return response;
}

// call() and the parsed JSON answer.
export async function callJson(path, options) {
  const response = await call(path, options);
  return response.status === 204 ? null : response.json();
}

// Percent-encodes one path segment (names may hold '/').
export const seg = (value) => encodeURIComponent(value);

// Wires a page's sign-in form and resumes with a key saved earlier in this tab.
// `signIn(key)` checks the key and opens the page (throws when the key is refused);
// `showSignIn(message)` shows the form with why; `problem(error)` words a refusal.
export function startSignIn(kind, { form, input, signIn, showSignIn, problem }) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await signIn(input.value.trim());
      input.value = '';
    } catch (error) {
      showSignIn(problem(error));
    }
  });
  const saved = getKey(kind);
  if (!saved) {
    showSignIn('');
    return;
  }
  signIn(saved).catch((error) => {
    setKey(kind, '');
    showSignIn(problem(error));
  });
}
