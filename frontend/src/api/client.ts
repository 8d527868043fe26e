/**
 * The typed API client: `api.GET('/api/v1/bots/', { params: { query: { status: 'running' } } })`, typed from
 * the server's OpenAPI schema (src/api/schema.d.ts). Wrap calls in {@link call} to get the data or an
 * {@link ApiError} (`{ status, fieldErrors, message }`) thrown.
 *
 * Every request carries the access token (kept in memory by the auth store, which registers itself with
 * {@link setAuthHooks}). A 401 triggers one token refresh (shared by concurrent requests) and one retry; when
 * the refresh fails the auth store logs out. Decimal amounts stay the strings the server sends.
 */
import createClient from 'openapi-fetch'
import type { paths } from './schema'
import { ApiError, normalizeError, toApiError } from './errors'

export interface AuthHooks {
  /** The current access token, or null when logged out. */
  accessToken(): string | null
  /** Get a new access token (rotating the refresh token); null when the session is over (already logged out). */
  refresh(): Promise<string | null>
}

let hooks: AuthHooks | null = null

/** Connect the client to the auth store (or disconnect with null). */
export function setAuthHooks(next: AuthHooks | null): void {
  hooks = next
}

function withToken(request: Request, token: string | null): Request {
  const next = new Request(request)
  if (token) next.headers.set('Authorization', `Bearer ${token}`)
  else next.headers.delete('Authorization')
  return next
}

/** fetch with the JWT, and one refresh + retry on a 401. */
export async function authFetch(request: Request): Promise<Response> {
  const retry = request.clone() // before the body is used
  const token = hooks?.accessToken() ?? null
  const response = await globalThis.fetch(withToken(request, token))
  if (response.status !== 401 || !hooks || !token) return response
  // another request may have refreshed in the meantime: use its token rather than rotating again
  const current = hooks.accessToken()
  const fresh = current && current !== token ? current : await hooks.refresh()
  if (!fresh) return response
  return globalThis.fetch(withToken(retry, fresh))
}

function origin(): string {
  return typeof location !== 'undefined' && location.origin && location.origin !== 'null' ? location.origin : ''
}

export const api = createClient<paths>({ baseUrl: origin(), fetch: authFetch })

type Result<T> = { data?: T; error?: unknown; response: Response }

/**
 * Await an openapi-fetch call: return its data, or throw an {@link ApiError} with the server's messages
 * (network failures included, as status 0).
 */
export async function call<T>(pending: Promise<Result<T>>): Promise<T> {
  let result: Result<T>
  try {
    result = await pending
  } catch (err) {
    throw toApiError(err)
  }
  if (!result.response.ok) throw normalizeError(result.response.status, result.error)
  return result.data as T
}

/**
 * Download a file from an authenticated endpoint (CSV/XLSX exports): `download('/api/v1/fills/', { format:
 * 'csv', bot: 3 }, 'fills.csv')`. Query values that are null/undefined/'' are left out.
 */
export async function download(
  path: string,
  query: Record<string, string | number | boolean | null | undefined>,
  filename: string,
): Promise<void> {
  const url = new URL(path, origin() || 'http://localhost')
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(key, String(value))
  }
  let response: Response
  try {
    response = await authFetch(new Request(origin() ? url.toString() : url.pathname + url.search))
  } catch (err) {
    throw toApiError(err)
  }
  if (!response.ok) {
    const text = await response.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      /* not JSON */
    }
    throw normalizeError(response.status, body)
  }
  const blob = await response.blob()
  const link = document.createElement('a')
  link.href = URL.createObjectURL(blob)
  link.download = filename
  document.body.appendChild(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000)
}

export { ApiError }
