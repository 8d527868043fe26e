import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { SESSION_HINT_KEY, useAuthStore } from '@/stores/auth'
import { api, call } from '@/api/client'
import { ApiError } from '@/api/errors'
import { fakeJwt, json, mockFetch, type Call } from './helpers'

const ME = { id: 7, username: 'alice', email: 'a@example.com', role: 'user', agent: null, referral_code: null,
  webhook_url: '', date_joined: '2026-01-01T00:00:00Z', last_login: null }

function bearer(c: Call): string | null {
  return c.headers.get('Authorization')
}

beforeEach(() => {
  setActivePinia(createPinia())
  localStorage.clear()
  vi.unstubAllGlobals()
})

describe('auth store', () => {
  it('logs in in browser mode: header sent, access token in memory only, me loaded', async () => {
    const access = fakeJwt()
    const { calls } = mockFetch({
      'POST /api/v1/auth/token/': () => json(200, { access }),
      'GET /api/v1/auth/me/': (c) => (bearer(c) === `Bearer ${access}` ? json(200, ME) : json(401, { detail: 'no' })),
    })
    const auth = useAuthStore()
    await auth.login('alice', 'secret-pass')
    expect(calls[0]!.headers.get('X-Gridfleet-Client')).toBe('web')
    expect(calls[0]!.credentials).toBe('same-origin')
    expect(JSON.parse(calls[0]!.body)).toEqual({ username: 'alice', password: 'secret-pass' })
    expect(auth.accessToken).toBe(access)
    expect(auth.user?.username).toBe('alice')
    expect(auth.isAuthenticated).toBe(true)
    expect(auth.hasRole(['user'])).toBe(true)
    expect(auth.hasRole(['admin'])).toBe(false)
    // no JWT anywhere page scripts could read later
    const stored = Object.keys(localStorage).map((k) => localStorage.getItem(k) ?? '')
    expect(stored.some((v) => v.includes(access))).toBe(false)
    expect(localStorage.getItem(SESSION_HINT_KEY)).toBe('1')
  })

  it('shows the server message of a refused login and stays logged out', async () => {
    mockFetch({ 'POST /api/v1/auth/token/': () => json(401, { detail: 'No active account found with the given credentials' }) })
    const auth = useAuthStore()
    await expect(auth.login('alice', 'bad')).rejects.toMatchObject({ status: 401, message: 'No active account found with the given credentials' })
    expect(auth.isAuthenticated).toBe(false)
    expect(localStorage.getItem(SESSION_HINT_KEY)).toBeNull()
  })

  it('refreshes once on a 401, retries with the new token, and rotates again next time', async () => {
    const first = fakeJwt()
    const second = fakeJwt()
    const third = fakeJwt()
    const issued = [second, third]
    const valid = new Set([first])
    const { calls } = mockFetch({
      'POST /api/v1/auth/token/': () => json(200, { access: first }),
      'POST /api/v1/auth/token/refresh/': () => {
        const next = issued.shift()!
        valid.clear()
        valid.add(next)
        return json(200, { access: next })
      },
      'GET /api/v1/auth/me/': (c) => (valid.has(bearer(c)!.slice(7)) ? json(200, ME) : json(401, { detail: 'expired', code: 'token_not_valid' })),
      'GET /api/v1/bots/': (c) =>
        valid.has(bearer(c)!.slice(7)) ? json(200, { count: 0, results: [] }) : json(401, { detail: 'expired', code: 'token_not_valid' }),
    })
    const auth = useAuthStore()
    await auth.login('alice', 'pw')
    valid.clear() // the access token expires at the server
    const page = await call(api.GET('/api/v1/bots/'))
    expect(page).toEqual({ count: 0, results: [] })
    expect(auth.accessToken).toBe(second)
    const refreshes = calls.filter((c) => c.path === '/api/v1/auth/token/refresh/')
    expect(refreshes).toHaveLength(1)
    // the refresh token travels in the HttpOnly cookie: the body carries none, the web header asks for the cookie
    expect(refreshes[0]!.headers.get('X-Gridfleet-Client')).toBe('web')
    expect(JSON.parse(refreshes[0]!.body)).toEqual({})
    const retried = calls.filter((c) => c.path === '/api/v1/bots/')
    expect(retried.map(bearer)).toEqual([`Bearer ${first}`, `Bearer ${second}`])

    valid.clear()
    await call(api.GET('/api/v1/bots/'))
    expect(auth.accessToken).toBe(third)
  })

  it('shares one refresh between concurrent 401s', async () => {
    const first = fakeJwt()
    const second = fakeJwt()
    let current = first
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const { calls } = mockFetch({
      'POST /api/v1/auth/token/': () => json(200, { access: first }),
      'POST /api/v1/auth/token/refresh/': async () => {
        await gate
        current = second
        return json(200, { access: second })
      },
      'GET /api/v1/auth/me/': () => json(200, ME),
      'GET /api/v1/bots/': (c) => (bearer(c) === `Bearer ${current}` ? json(200, { count: 1, results: [] }) : json(401, { detail: 'expired' })),
    })
    const auth = useAuthStore()
    await auth.login('alice', 'pw')
    current = 'nobody'
    const pending = Promise.all([1, 2, 3].map(() => call(api.GET('/api/v1/bots/'))))
    await new Promise((r) => setTimeout(r, 10))
    release()
    const pages = await pending
    expect(pages.map((p) => p.count)).toEqual([1, 1, 1])
    expect(calls.filter((c) => c.path === '/api/v1/auth/token/refresh/')).toHaveLength(1)
    expect(auth.accessToken).toBe(second)
  })

  it('logs out when the refresh is refused (expired/revoked refresh token)', async () => {
    mockFetch({
      'POST /api/v1/auth/token/': () => json(200, { access: fakeJwt() }),
      'GET /api/v1/auth/me/': () => json(200, ME),
      'POST /api/v1/auth/token/refresh/': () => json(401, { detail: 'Token is blacklisted', code: 'token_not_valid' }),
      'GET /api/v1/bots/': () => json(401, { detail: 'expired' }),
    })
    const auth = useAuthStore()
    await auth.login('alice', 'pw')
    const error = await call(api.GET('/api/v1/bots/')).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect((error as ApiError).status).toBe(401)
    expect(auth.isAuthenticated).toBe(false)
    expect(auth.accessToken).toBeNull()
    expect(auth.user).toBeNull()
    expect(auth.lastEndReason).toBe('expired')
    expect(localStorage.getItem(SESSION_HINT_KEY)).toBeNull()
  })

  it('keeps the session when the refresh fails for network reasons', async () => {
    const access = fakeJwt()
    mockFetch({
      'POST /api/v1/auth/token/': () => json(200, { access }),
      'GET /api/v1/auth/me/': () => json(200, ME),
      'POST /api/v1/auth/token/refresh/': () => {
        throw new TypeError('Failed to fetch')
      },
      'GET /api/v1/bots/': () => json(401, { detail: 'expired' }),
    })
    const auth = useAuthStore()
    await auth.login('alice', 'pw')
    const error = (await call(api.GET('/api/v1/bots/')).catch((e: unknown) => e)) as ApiError
    expect(error.isNetwork).toBe(true)
    expect(auth.isAuthenticated).toBe(true)
    expect(auth.accessToken).toBe(access)
  })

  it('restores a session from the cookie on page load only when the hint says so', async () => {
    const access = fakeJwt()
    const { calls } = mockFetch({
      'POST /api/v1/auth/token/refresh/': () => json(200, { access }),
      'GET /api/v1/auth/me/': () => json(200, ME),
    })
    await useAuthStore().init()
    expect(calls).toHaveLength(0) // anonymous visitor: no refresh call

    setActivePinia(createPinia())
    localStorage.setItem(SESSION_HINT_KEY, '1')
    const auth = useAuthStore()
    await auth.init()
    expect(auth.isAuthenticated).toBe(true)
    expect(auth.accessToken).toBe(access)
    expect(calls.map((c) => c.path)).toEqual(['/api/v1/auth/token/refresh/', '/api/v1/auth/me/'])
  })

  it('logs out at the server (cookie) and forgets everything', async () => {
    const { calls } = mockFetch({
      'POST /api/v1/auth/token/': () => json(200, { access: fakeJwt() }),
      'GET /api/v1/auth/me/': () => json(200, ME),
      'POST /api/v1/auth/logout/': () => json(200, { detail: 'Logged out.' }),
    })
    const auth = useAuthStore()
    await auth.login('alice', 'pw')
    await auth.logout()
    const logout = calls.find((c) => c.path === '/api/v1/auth/logout/')!
    expect(logout.headers.get('X-Gridfleet-Client')).toBe('web')
    expect(auth.isAuthenticated).toBe(false)
    expect(auth.lastEndReason).toBe('logout')
    expect(localStorage.getItem(SESSION_HINT_KEY)).toBeNull()
  })

  it('registers (empty referral code left out) and logs in', async () => {
    const { calls } = mockFetch({
      'POST /api/v1/auth/register/': () => json(201, { id: 7, username: 'alice', email: 'a@example.com', role: 'user' }),
      'POST /api/v1/auth/token/': () => json(200, { access: fakeJwt() }),
      'GET /api/v1/auth/me/': () => json(200, ME),
    })
    const auth = useAuthStore()
    await auth.register({ username: 'alice', email: 'a@example.com', password: 'pw-123456', referral_code: '' })
    expect(JSON.parse(calls[0]!.body)).toEqual({ username: 'alice', email: 'a@example.com', password: 'pw-123456' })
    expect(auth.isAuthenticated).toBe(true)
  })

  it('puts register field errors on the fields', async () => {
    mockFetch({ 'POST /api/v1/auth/register/': () => json(400, { referral_code: ['Unknown referral code.'] }) })
    const auth = useAuthStore()
    const error = (await auth
      .register({ username: 'a', email: 'a@example.com', password: 'x', referral_code: 'NOPE' })
      .catch((e: unknown) => e)) as ApiError
    expect(error.fieldErrors).toEqual({ referral_code: ['Unknown referral code.'] })
  })
})
