import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { nextTick } from 'vue'
import { useAuthStore } from '@/stores/auth'
import { realtimeConfig } from '@/stores/realtime'
import { useRealtimeStore } from '@/stores/realtime'
import { useNotificationsStore } from '@/stores/notifications'
import { fakeJwt, json, mockFetch } from './helpers'

function note(id: number, read = false) {
  return { id, kind: 'risk_alert', title: `n${id}`, body: '', data: {}, created_at: '2026-01-01T00:00:00Z', read_at: read ? '2026-01-01T00:00:00Z' : null, read }
}

beforeEach(() => {
  setActivePinia(createPinia())
  vi.unstubAllGlobals()
  realtimeConfig.createSocket = () => ({ close() {}, send() {} }) as unknown as WebSocket
})

describe('notifications store', () => {
  it('loads the unread count and latest on login, follows mark-read and live arrivals (own only)', async () => {
    let items = [note(2), note(1, true)]
    const { calls } = mockFetch({
      'GET /api/v1/notifications/': (c) => {
        const unread = c.path.includes('unread=1')
        const list = unread ? items.filter((n) => !n.read) : items
        return json(200, { count: list.length, results: unread ? list.slice(0, 1) : list })
      },
      'POST /api/v1/notifications/2/read/': () => {
        items = items.map((n) => (n.id === 2 ? note(2, true) : n))
        return json(200, note(2, true))
      },
    })
    const auth = useAuthStore()
    const store = useNotificationsStore()
    const arrived: number[] = []
    store.onArrival((list) => arrived.push(...list.map((n) => n.id)))
    auth.accessToken = fakeJwt()
    auth.user = { id: 1, username: 'a', email: '', role: 'user', agent: null, referral_code: null, date_joined: '', last_login: null }
    await nextTick()
    await vi.waitFor(() => expect(store.unreadCount).toBe(1))
    expect(store.recent.map((n) => n.id)).toEqual([2, 1])

    await store.markRead(2)
    expect(store.unreadCount).toBe(0)
    expect(store.recent[0]!.read).toBe(true)

    // a live event for a stored notification → reload; only the caller's own new ones are announced
    vi.useFakeTimers()
    items = [note(3), ...items]
    useRealtimeStore().dispatch({ type: 'notification', id: 'e1', ts: 1, data: { id: 3, title: 'n3', body: '' } })
    useRealtimeStore().dispatch({ type: 'notification', id: 'e2', ts: 2, data: { id: 99, title: 'a client', body: '' } })
    await vi.advanceTimersByTimeAsync(400)
    vi.useRealTimers()
    await vi.waitFor(() => expect(store.unreadCount).toBe(1))
    expect(arrived).toEqual([3])
    expect(calls.filter((c) => c.method === 'GET').length).toBeGreaterThanOrEqual(4)

    auth.endSession('logout')
    await nextTick()
    expect(store.unreadCount).toBe(0)
    expect(store.recent).toEqual([])
  })
})
