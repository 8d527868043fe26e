/**
 * The notifications bell: unread count and the latest notifications, from `/api/v1/notifications/` and kept
 * current by the realtime `notification` events (stored ones carry an id). Pages that list notifications
 * call {@link markRead}/{@link markAllRead} here so the bell follows.
 */
import { defineStore } from 'pinia'
import { ref, watch } from 'vue'
import { api, call } from '@/api/client'
import type { Notification, Page } from '@/api/types'
import { useAuthStore } from './auth'
import { useRealtimeStore, type RealtimeEvent } from './realtime'

const RECENT = 8

export const useNotificationsStore = defineStore('notifications', () => {
  const auth = useAuthStore()
  const realtime = useRealtimeStore()
  const unreadCount = ref(0)
  const recent = ref<Notification[]>([])
  const loading = ref(false)
  const error = ref<string | null>(null)
  /** Bumped on every change so pages showing a list can reload. */
  const version = ref(0)

  async function refresh(): Promise<void> {
    if (!auth.isAuthenticated) return
    loading.value = true
    try {
      const [unread, latest] = await Promise.all([
        // `unread` is a filter the server reads but the schema does not declare
        call(api.GET('/api/v1/notifications/', { params: { query: { limit: 1, unread: 1 } as { limit: number } } })),
        call(api.GET('/api/v1/notifications/', { params: { query: { limit: RECENT } } })),
      ])
      unreadCount.value = (unread as Page<Notification>).count
      recent.value = (latest as Page<Notification>).results
      error.value = null
    } catch (err) {
      error.value = err instanceof Error ? err.message : String(err)
    } finally {
      loading.value = false
    }
  }

  function applyRead(id: number, readAt: string | null): void {
    recent.value = recent.value.map((n) => (n.id === id && !n.read ? { ...n, read: true, read_at: readAt } : n))
  }

  async function markRead(id: number): Promise<Notification> {
    const updated = await call(api.POST('/api/v1/notifications/{id}/read/', { params: { path: { id: String(id) } } }))
    const wasUnread = recent.value.some((n) => n.id === id && !n.read)
    applyRead(id, updated.read_at)
    if (wasUnread || !recent.value.some((n) => n.id === id)) unreadCount.value = Math.max(0, unreadCount.value - 1)
    version.value += 1
    void refreshCount()
    return updated
  }

  async function markAllRead(): Promise<number> {
    const result = (await call(api.POST('/api/v1/notifications/read-all/'))) as unknown as { marked?: number }
    const now = new Date().toISOString()
    for (const n of recent.value) applyRead(n.id, now)
    unreadCount.value = 0
    version.value += 1
    return result.marked ?? 0
  }

  async function refreshCount(): Promise<void> {
    try {
      const page = await call(
        api.GET('/api/v1/notifications/', { params: { query: { limit: 1, unread: 1 } as { limit: number } } }),
      )
      unreadCount.value = page.count
    } catch {
      /* the bell keeps its last count */
    }
  }

  // Agents and admins also receive their clients' events, and the list API is own-only: so an incoming stored
  // notification triggers a (debounced) reload instead of being trusted, and only notifications that the reload
  // finds in the caller's own list are announced.
  let reloadTimer: ReturnType<typeof setTimeout> | null = null
  const arrivalHandlers = new Set<(items: Notification[]) => void>()

  /** Call `handler` with the caller's own notifications that arrived live (for toasts). */
  function onArrival(handler: (items: Notification[]) => void): () => void {
    arrivalHandlers.add(handler)
    return () => arrivalHandlers.delete(handler)
  }

  async function reloadAfterEvent(): Promise<void> {
    const before = new Set(recent.value.map((n) => n.id))
    const newestBefore = recent.value.reduce((max, n) => Math.max(max, n.id), 0)
    await refresh()
    const arrived = recent.value.filter((n) => !n.read && !before.has(n.id) && n.id > newestBefore)
    if (arrived.length) {
      version.value += 1
      for (const handler of [...arrivalHandlers]) handler(arrived)
    }
  }

  function onNotification(event: RealtimeEvent<'notification'>): void {
    if (typeof event.data.id !== 'number') return // a live-only message: not in the stored list
    if (reloadTimer) clearTimeout(reloadTimer)
    reloadTimer = setTimeout(() => {
      reloadTimer = null
      void reloadAfterEvent()
    }, 300)
  }

  realtime.subscribe('notification', onNotification)

  watch(
    () => auth.isAuthenticated,
    (on) => {
      if (on) void refresh()
      else {
        unreadCount.value = 0
        recent.value = []
        error.value = null
      }
    },
    { immediate: true },
  )

  return { unreadCount, recent, loading, error, version, refresh, refreshCount, markRead, markAllRead, onArrival }
})
