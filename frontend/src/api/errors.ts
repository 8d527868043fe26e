/**
 * DRF error bodies → one shape the UI can show: `{ fieldErrors, message }`.
 *
 * - `{"detail": "…"}` → message
 * - `{"field": ["…"], "non_field_errors": ["…"]}` → fieldErrors.field, message from non_field_errors/detail
 * - nested serializers/lists → dotted keys: `config.levels`, `layers.1.price`
 * - a list of strings at the top → message
 * - anything else (HTML 502, empty body, network failure) → a message from the status
 */

export type FieldErrors = Record<string, string[]>

export class ApiError extends Error {
  /** HTTP status; 0 when the request never got an answer (network error, aborted). */
  readonly status: number
  /** Messages per form field (dotted path for nested fields). */
  readonly fieldErrors: FieldErrors
  /** The raw response body, when there was one. */
  readonly body: unknown

  constructor(status: number, message: string, fieldErrors: FieldErrors = {}, body: unknown = undefined) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.fieldErrors = fieldErrors
    this.body = body
  }

  /** True for a failure to reach the server at all. */
  get isNetwork(): boolean {
    return this.status === 0
  }

  /** True when the server refused the input (the form should show `fieldErrors`). */
  get isValidation(): boolean {
    return this.status === 400 && Object.keys(this.fieldErrors).length > 0
  }
}

const GENERAL_KEYS = new Set(['detail', 'non_field_errors', '__all__', 'message', 'error'])

function messagesOf(value: unknown): string[] {
  if (value === null || value === undefined) return []
  if (typeof value === 'string') return value ? [value] : []
  if (typeof value === 'number' || typeof value === 'boolean') return [String(value)]
  if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')) {
    return value.map(String).filter(Boolean)
  }
  return []
}

function flatten(value: unknown, path: string, out: FieldErrors): void {
  const direct = messagesOf(value)
  if (direct.length) {
    ;(out[path] ??= []).push(...direct)
    return
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      // ["too low", {...}] mixes are rare; strings in a list of objects apply to the list itself
      if (typeof item === 'string') (out[path] ??= []).push(item)
      else flatten(item, path ? `${path}.${i}` : String(i), out)
    })
    return
  }
  if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      const sub = GENERAL_KEYS.has(key) && path ? path : path ? `${path}.${key}` : key
      flatten(inner, sub, out)
    }
  }
}

const STATUS_MESSAGES: Record<number, string> = {
  0: 'Network error: the server could not be reached.',
  400: 'The request was refused.',
  401: 'Please log in again.',
  403: 'You do not have permission to do this.',
  404: 'Not found.',
  409: 'The request conflicts with the current state.',
  413: 'The request is too large.',
  429: 'Too many requests: please wait and retry.',
  500: 'Server error.',
  502: 'The server is unavailable (bad gateway).',
  503: 'The server is unavailable.',
  504: 'The server took too long to answer.',
}

/** The generic message for a status (used when the body says nothing readable). */
export function statusMessage(status: number): string {
  return STATUS_MESSAGES[status] ?? (status >= 500 ? STATUS_MESSAGES[500]! : `Request failed (HTTP ${status}).`)
}

/** Turn a DRF error body and status into an {@link ApiError}. */
export function normalizeError(status: number, body: unknown): ApiError {
  const general: string[] = []
  const fieldErrors: FieldErrors = {}
  if (typeof body === 'string') {
    // an HTML error page or plain text: never show markup
    const text = body.trim()
    if (text && !text.startsWith('<') && text.length <= 300) general.push(text)
  } else if (Array.isArray(body)) {
    general.push(...messagesOf(body))
    if (!general.length) flatten(body, '', fieldErrors)
  } else if (body && typeof body === 'object') {
    const record = body as Record<string, unknown>
    // simplejwt answers {"detail", "code": "token_not_valid", "messages": [...]}: detail says it all
    const jwtShape = 'detail' in record && typeof record.code === 'string'
    for (const [key, value] of Object.entries(record)) {
      if (jwtShape && (key === 'code' || key === 'messages')) continue
      if (GENERAL_KEYS.has(key)) {
        const msgs = messagesOf(value)
        if (msgs.length) general.push(...msgs)
        else flatten(value, '', fieldErrors)
      } else {
        flatten(value, key, fieldErrors)
      }
    }
  }
  let message = general.join(' ')
  if (!message) {
    const first = Object.entries(fieldErrors)[0]
    message = first ? (first[0] ? `${first[0]}: ${first[1][0]}` : (first[1][0] ?? '')) : statusMessage(status)
  }
  return new ApiError(status, message, fieldErrors, body)
}

/** Any thrown value → ApiError (network failures, aborts and programming errors included). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err
  if (err instanceof DOMException && err.name === 'AbortError') return new ApiError(0, 'Request cancelled.')
  if (err instanceof TypeError) return new ApiError(0, statusMessage(0))
  return new ApiError(0, err instanceof Error ? err.message : String(err))
}
