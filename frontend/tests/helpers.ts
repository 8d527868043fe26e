import { vi } from 'vitest'

/** A JWT-shaped token (unsigned) expiring `inSeconds` from now. */
export function fakeJwt(inSeconds = 900, extra: Record<string, unknown> = {}): string {
  const enc = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ exp: Math.floor(Date.now() / 1000) + inSeconds, jti: Math.random().toString(36), ...extra })}.sig`
}

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

export interface Call {
  method: string
  path: string
  headers: Headers
  body: string
  credentials: RequestCredentials
}

/** Replace globalThis.fetch with a router of `"METHOD /path"` → handler; records every call. */
export function mockFetch(routes: Record<string, (call: Call) => Response | Promise<Response>>) {
  const calls: Call[] = []
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init)
    const url = new URL(request.url)
    const call: Call = {
      method: request.method,
      path: url.pathname + url.search,
      headers: request.headers,
      body: await request.text(),
      credentials: request.credentials,
    }
    calls.push(call)
    const handler = routes[`${call.method} ${url.pathname}`] ?? routes[`${call.method} ${call.path}`]
    if (!handler) return json(404, { detail: `no mock for ${call.method} ${call.path}` })
    return handler(call)
  })
  vi.stubGlobal('fetch', fn)
  return { calls, fn }
}
