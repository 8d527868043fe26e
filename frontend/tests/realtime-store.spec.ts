import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { nextTick } from 'vue'
import { backoffDelay, CLOSE_UNAUTHORIZED, realtimeConfig, useRealtimeStore, type RealtimeEvent } from '@/stores/realtime'
import { useAuthStore } from '@/stores/auth'
import { fakeJwt } from './helpers'

class FakeSocket {
  static all: FakeSocket[] = []
  readyState = 0
  sent: string[] = []
  closedWith: number | null = null
  onmessage: ((e: MessageEvent) => void) | null = null
  onclose: ((e: CloseEvent) => void) | null = null
  onerror: ((e: Event) => void) | null = null
  constructor(
    public url: string,
    public token: string,
  ) {
    FakeSocket.all.push(this)
  }
  send(data: string): void {
    this.sent.push(data)
  }
  close(code = 1000): void {
    this.closedWith = code
    this.readyState = 3
  }
  // server side
  open(): void {
    this.readyState = 1
    this.message({ type: 'hello', data: { user: 7, role: 'user' }, ts: Date.now() })
  }
  message(payload: unknown): void {
    this.onmessage?.({ data: JSON.stringify(payload) } as MessageEvent)
  }
  serverClose(code: number, reason = ''): void {
    this.readyState = 3
    this.onclose?.({ code, reason } as CloseEvent)
  }
}

const defaults = { ...realtimeConfig }

async function loggedIn(token = fakeJwt()) {
  const auth = useAuthStore()
  auth.accessToken = token
  auth.user = { id: 7, username: 'alice', email: '', role: 'user', agent: null, referral_code: null, date_joined: '', last_login: null }
  const rt = useRealtimeStore()
  await nextTick()
  return { auth, rt }
}

beforeEach(() => {
  vi.useFakeTimers()
  setActivePinia(createPinia())
  FakeSocket.all = []
  Object.assign(realtimeConfig, {
    url: () => 'ws://test/ws/',
    createSocket: (url: string, token: string) => new FakeSocket(url, token) as unknown as WebSocket,
    backoffBaseMs: 1000,
    backoffMaxMs: 30000,
    heartbeatMs: 25000,
    staleMs: 70000,
    random: () => 0.5,
  })
})
afterEach(() => {
  vi.useRealTimers()
  Object.assign(realtimeConfig, defaults)
})

describe('realtime store', () => {
  it('connects once logged in, with the access token, and disconnects on logout', async () => {
    const token = fakeJwt()
    const { auth, rt } = await loggedIn(token)
    expect(FakeSocket.all).toHaveLength(1)
    expect(FakeSocket.all[0]!.token).toBe(token)
    expect(rt.status).toBe('connecting')
    FakeSocket.all[0]!.open()
    expect(rt.status).toBe('open')
    auth.endSession('logout')
    await nextTick()
    expect(FakeSocket.all[0]!.closedWith).toBe(1000)
    expect(rt.status).toBe('closed')
  })

  it('dispatches events by type and bot, drops duplicates, survives a throwing handler', async () => {
    const { rt } = await loggedIn()
    const ws = FakeSocket.all[0]!
    ws.open()
    const fills: RealtimeEvent<'fill'>[] = []
    const bot3: RealtimeEvent[] = []
    const all: string[] = []
    rt.subscribe('fill', (e) => fills.push(e))
    rt.subscribe('*', (e) => bot3.push(e), { bot: 3 })
    rt.subscribe('*', (e) => all.push(e.type))
    const off = rt.subscribe('pnl', () => {
      throw new Error('broken handler')
    })
    vi.spyOn(console, 'error').mockImplementation(() => undefined)
    const fill = { type: 'fill', bot: 3, id: 'a1', ts: 1, data: { trade_id: 't1', side: 'buy', price: '100.10', amount: '0.5' } }
    ws.message(fill)
    ws.message(fill) // duplicate id
    ws.message({ type: 'pnl', bot: 4, id: 'a2', ts: 2, data: { equity: '1000.5' } })
    ws.message({ type: 'pong', data: {}, ts: 3 })
    ws.message('not json at all')
    expect(fills).toHaveLength(1)
    expect(fills[0]!.data.price).toBe('100.10') // decimals stay strings
    expect(bot3.map((e) => e.type)).toEqual(['fill'])
    expect(all).toEqual(['fill', 'pnl'])
    off()
    ws.message({ type: 'pnl', bot: 4, id: 'a3', ts: 4, data: {} })
    expect(all).toEqual(['fill', 'pnl', 'pnl'])
  })

  it('reconnects with exponential backoff after drops and resets it after a good connection', async () => {
    const { rt } = await loggedIn()
    FakeSocket.all[0]!.open()
    FakeSocket.all[0]!.serverClose(1006)
    expect(rt.status).toBe('reconnecting')
    vi.advanceTimersByTime(999)
    expect(FakeSocket.all).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(FakeSocket.all).toHaveLength(2) // after 1 s
    FakeSocket.all[1]!.serverClose(1006) // fails before hello
    vi.advanceTimersByTime(1999)
    expect(FakeSocket.all).toHaveLength(2)
    vi.advanceTimersByTime(1)
    expect(FakeSocket.all).toHaveLength(3) // after 2 s
    FakeSocket.all[2]!.serverClose(1011)
    vi.advanceTimersByTime(4000)
    expect(FakeSocket.all).toHaveLength(4) // after 4 s
    FakeSocket.all[3]!.open()
    expect(rt.attempts).toBe(0)
    FakeSocket.all[3]!.serverClose(1006)
    vi.advanceTimersByTime(1000)
    expect(FakeSocket.all).toHaveLength(5) // back to 1 s
  })

  it('caps the backoff and adds jitter', () => {
    realtimeConfig.backoffBaseMs = 1000
    realtimeConfig.backoffMaxMs = 30000
    expect(backoffDelay(0, () => 0.5)).toBe(1000)
    expect(backoffDelay(3, () => 0.5)).toBe(8000)
    expect(backoffDelay(30, () => 0.5)).toBe(30000)
    expect(backoffDelay(30, () => 0)).toBe(22500)
    expect(backoffDelay(30, () => 1)).toBe(37500)
  })

  it('re-authenticates after a 4401 close: refresh, then reconnect with the new token', async () => {
    const old = fakeJwt(1)
    const fresh = fakeJwt()
    const { auth } = await loggedIn(old)
    const refresh = vi.spyOn(auth, 'refresh').mockImplementation(async () => {
      auth.accessToken = fresh
      return fresh
    })
    FakeSocket.all[0]!.open()
    FakeSocket.all[0]!.message({ type: 'token_expired', data: {}, ts: 1 })
    FakeSocket.all[0]!.serverClose(CLOSE_UNAUTHORIZED, 'token expired')
    await vi.runOnlyPendingTimersAsync()
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(FakeSocket.all).toHaveLength(2)
    expect(FakeSocket.all[1]!.token).toBe(fresh)
  })

  it('uses a token refreshed meanwhile without refreshing again', async () => {
    const old = fakeJwt()
    const { auth } = await loggedIn(old)
    const refresh = vi.spyOn(auth, 'refresh')
    FakeSocket.all[0]!.open()
    const newer = fakeJwt()
    auth.accessToken = newer // the auth store refreshed ahead of expiry
    FakeSocket.all[0]!.serverClose(CLOSE_UNAUTHORIZED)
    await vi.runOnlyPendingTimersAsync()
    expect(refresh).not.toHaveBeenCalled()
    expect(FakeSocket.all[1]!.token).toBe(newer)
  })

  it('stops when the refresh is refused (the session is over)', async () => {
    const { auth, rt } = await loggedIn(fakeJwt(1))
    vi.spyOn(auth, 'refresh').mockImplementation(async () => {
      auth.endSession('expired')
      return null
    })
    FakeSocket.all[0]!.serverClose(CLOSE_UNAUTHORIZED)
    await vi.runAllTimersAsync()
    expect(FakeSocket.all).toHaveLength(1)
    expect(rt.status).toBe('closed')
  })

  it('pings, and reconnects when the server goes silent', async () => {
    const { rt } = await loggedIn()
    const ws = FakeSocket.all[0]!
    ws.open()
    vi.advanceTimersByTime(25000)
    expect(ws.sent).toEqual([JSON.stringify({ type: 'ping' })])
    ws.message({ type: 'pong', data: {}, ts: 1 })
    vi.advanceTimersByTime(75000) // nothing for > staleMs
    expect(ws.closedWith).toBe(1000)
    expect(rt.status).toBe('reconnecting')
    vi.advanceTimersByTime(1000)
    expect(FakeSocket.all).toHaveLength(2)
  })

  it('reconnects at once when the network comes back', async () => {
    await loggedIn()
    FakeSocket.all[0]!.serverClose(1006)
    window.dispatchEvent(new Event('online'))
    expect(FakeSocket.all).toHaveLength(2)
  })
})
