/**
 * Authentication: login, register, logout, the current user (`/auth/me/`) and the access token.
 *
 * Browser mode (docs/server-auth.md): login, refresh and logout send `X-Gridfleet-Client: web`, so the refresh
 * token lives only in the server's HttpOnly `gridfleet_refresh` cookie (rotated on every refresh, the old one
 * blacklisted) and page scripts never see it. The access token is kept in memory; a page load gets a new one
 * from the cookie. localStorage holds only a non-secret hint (`gridfleet.session`) that a session may exist, so
 * anonymous visitors do not cause a refresh call, and so that a logout in one tab ends the others.
 */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, call, setAuthHooks } from '@/api/client'
import { ApiError, normalizeError, toApiError } from '@/api/errors'
import type { Me, Role, Schemas } from '@/api/types'
import { jwtExpiresAt } from '@/utils/jwt'

export const SESSION_HINT_KEY = 'gridfleet.session'
const WEB_CLIENT_HEADERS = { 'Content-Type': 'application/json', 'X-Gridfleet-Client': 'web' }
/** Refresh this long before the access token expires. */
const REFRESH_AHEAD_MS = 60_000

export type SessionEndReason = 'logout' | 'expired' | 'other-tab'
export type RegisterPayload = Schemas['RegisterRequest']

async function postAuth(path: string, body: Record<string, unknown>): Promise<{ access: string }> {
  let response: Response
  try {
    response = await globalThis.fetch(new Request(path.startsWith('/') ? location.origin + path : path, {
      method: 'POST',
      headers: WEB_CLIENT_HEADERS,
      credentials: 'same-origin',
      body: JSON.stringify(body),
    }))
  } catch (err) {
    throw toApiError(err)
  }
  const text = await response.text()
  let data: unknown = text
  try {
    data = text ? JSON.parse(text) : {}
  } catch {
    /* not JSON */
  }
  if (!response.ok) throw normalizeError(response.status, data)
  const access = (data as { access?: unknown }).access
  if (typeof access !== 'string') throw new ApiError(response.status, 'The server sent no access token.')
  return { access }
}

/** Run `fn` under a cross-tab lock when the browser has one (two tabs must not rotate the same cookie at once). */
function withRefreshLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined
  return locks ? (locks.request('gridfleet-auth-refresh', fn) as Promise<T>) : fn()
}

function storage(): Storage | null {
  try {
    return typeof localStorage !== 'undefined' ? localStorage : null
  } catch {
    return null
  }
}

export const useAuthStore = defineStore('auth', () => {
  const accessToken = ref<string | null>(null)
  const user = ref<Me | null>(null)
  const initialized = ref(false)
  const lastEndReason = ref<SessionEndReason | null>(null)

  let initPromise: Promise<void> | null = null
  let refreshPromise: Promise<string | null> | null = null
  let refreshTimer: ReturnType<typeof setTimeout> | null = null

  const isAuthenticated = computed(() => accessToken.value !== null && user.value !== null)
  const role = computed<Role | null>(() => user.value?.role ?? null)

  function hasRole(roles: readonly Role[] | undefined): boolean {
    if (!roles || roles.length === 0) return true
    return role.value !== null && roles.includes(role.value)
  }

  function scheduleRefresh(token: string): void {
    if (refreshTimer) clearTimeout(refreshTimer)
    refreshTimer = null
    const at = jwtExpiresAt(token)
    if (at === null) return
    const delay = Math.max(5_000, at - Date.now() - REFRESH_AHEAD_MS)
    refreshTimer = setTimeout(() => {
      refreshTimer = null
      if (accessToken.value === token) void refresh().catch(() => undefined) // a network blip: the next 401 retries
    }, delay)
  }

  function setAccess(token: string): void {
    accessToken.value = token
    lastEndReason.value = null
    storage()?.setItem(SESSION_HINT_KEY, '1')
    scheduleRefresh(token)
  }

  function endSession(reason: SessionEndReason): void {
    if (refreshTimer) clearTimeout(refreshTimer)
    refreshTimer = null
    const had = accessToken.value !== null || user.value !== null
    accessToken.value = null
    user.value = null
    if (reason !== 'other-tab') storage()?.removeItem(SESSION_HINT_KEY)
    if (had || reason !== 'expired') lastEndReason.value = reason
  }

  async function loadMe(): Promise<Me> {
    const me = await call(api.GET('/api/v1/auth/me/'))
    user.value = me
    return me
  }

  async function login(username: string, password: string): Promise<Me> {
    const { access } = await postAuth('/api/v1/auth/token/', { username, password })
    setAccess(access)
    try {
      return await loadMe()
    } catch (err) {
      endSession('expired')
      throw err
    }
  }

  async function register(payload: RegisterPayload): Promise<Me> {
    const body: RegisterPayload = { ...payload }
    if (!body.referral_code) delete body.referral_code
    await call(api.POST('/api/v1/auth/register/', { body }))
    return login(payload.username, payload.password)
  }

  async function doRefresh(): Promise<string | null> {
    try {
      const { access } = await postAuth('/api/v1/auth/token/refresh/', {})
      setAccess(access)
      return access
    } catch (err) {
      const error = toApiError(err)
      // the server could not be reached or is overloaded: keep the session, the caller sees the error
      if (error.isNetwork || error.status >= 500 || error.status === 429) throw error
      endSession('expired') // the refresh token is expired, revoked or missing
      return null
    }
  }

  /** A new access token from the refresh cookie (one call at a time, shared); null once the session is over. */
  function refresh(): Promise<string | null> {
    refreshPromise ??= withRefreshLock(doRefresh).finally(() => {
      refreshPromise = null
    })
    return refreshPromise
  }

  async function logout(): Promise<void> {
    try {
      await postAuth('/api/v1/auth/logout/', {})
    } catch {
      /* the cookie may be gone already; the session ends here anyway */
    }
    endSession('logout')
  }

  /** Restore the session from the refresh cookie once per page load (the router waits for it). */
  function init(): Promise<void> {
    initPromise ??= (async () => {
      try {
        if (storage()?.getItem(SESSION_HINT_KEY) && (await refresh())) await loadMe()
      } catch {
        if (!user.value) endSession('expired')
      } finally {
        initialized.value = true
      }
    })()
    return initPromise
  }

  setAuthHooks({ accessToken: () => accessToken.value, refresh })

  if (typeof window !== 'undefined') {
    window.addEventListener('storage', (event) => {
      if (event.key === SESSION_HINT_KEY && event.newValue === null && accessToken.value) endSession('other-tab')
    })
  }

  return {
    accessToken,
    user,
    initialized,
    lastEndReason,
    isAuthenticated,
    role,
    hasRole,
    init,
    login,
    register,
    refresh,
    logout,
    loadMe,
    endSession,
  }
})
