/**
 * One websocket to `/ws/` for the whole app, with reconnect (exponential backoff with jitter), heartbeat and
 * re-authentication. Components subscribe to event types (`useRealtimeEvent('fill', handler)` in a component,
 * or `useRealtimeStore().subscribe(...)`).
 *
 * Wire format (gridfleet/server/realtime/notify.py): one JSON text frame `{type, bot?, data, ts, id}`; the
 * consumer also sends `hello` (after auth), `pong`, `token_expired` and closes with 4401 when the access token
 * is missing/invalid/expired. The token travels as the `jwt, <token>` subprotocol pair (supported by the
 * server like `?token=`, and kept out of URLs and access logs).
 */
import { defineStore } from 'pinia'
import { ref, watch } from 'vue'
import { useAuthStore } from './auth'
import { jwtExpiringSoon } from '@/utils/jwt'

export const CLOSE_UNAUTHORIZED = 4401

export interface BotStatusData {
  status: string
  message?: string
  bot_name?: string
  symbol?: string
  kind?: string
  journal_id?: number
  [key: string]: unknown
}
export interface FillData {
  trade_id: string
  client_id: string | null
  symbol: string
  side: 'buy' | 'sell'
  price: string
  amount: string
  fee: string | null
  fee_currency: string | null
  is_maker: boolean | null
}
export interface PnlData {
  price: string | null
  equity: string | null
  grid_profit: string | null
  realized_pnl: string | null
  unrealized_pnl: string | null
  base: string | null
  quote_flow: string | null
}
export interface RiskAlertData {
  kind: string
  message: string
  data: Record<string, unknown>
  journal_id: number
  bot_name: string
  symbol: string
}
export interface NotificationData {
  /** The stored notification's id; null for a live-only message (not in the notifications list). */
  id: number | null
  kind?: string
  level?: string
  title: string
  body: string
  data?: Record<string, unknown>
  created_at?: string
  [key: string]: unknown
}
export interface RealtimeEventMap {
  bot_status: BotStatusData
  fill: FillData
  pnl: PnlData
  risk_alert: RiskAlertData
  notification: NotificationData
}
export type RealtimeEventType = keyof RealtimeEventMap
export interface RealtimeEvent<K extends RealtimeEventType = RealtimeEventType> {
  type: K
  bot?: number
  data: RealtimeEventMap[K]
  ts: number
  id?: string
}
export type RealtimeHandler<K extends RealtimeEventType> = (event: RealtimeEvent<K>) => void
export interface SubscribeFilter {
  /** Only events of this bot. */
  bot?: number
}
export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'

/** Tunables (tests shorten them and inject a fake WebSocket). */
export const realtimeConfig = {
  url: (): string => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/`,
  createSocket: (url: string, token: string): WebSocket => new WebSocket(url, ['jwt', token]),
  backoffBaseMs: 1_000,
  backoffMaxMs: 30_000,
  heartbeatMs: 25_000,
  /** Reconnect when nothing (not even a pong) arrived for this long. */
  staleMs: 70_000,
  random: Math.random,
}

/** Backoff before reconnect attempt `attempt` (0-based): base·2^attempt capped, with ±25% jitter. */
export function backoffDelay(attempt: number, random = realtimeConfig.random): number {
  const raw = Math.min(realtimeConfig.backoffMaxMs, realtimeConfig.backoffBaseMs * 2 ** Math.min(attempt, 20))
  return Math.round(raw * (0.75 + random() * 0.5))
}

const EVENT_TYPES = new Set<string>(['bot_status', 'fill', 'pnl', 'risk_alert', 'notification'])
const SEEN_IDS = 500

interface Subscription {
  type: RealtimeEventType | '*'
  handler: (event: RealtimeEvent) => void
  filter: SubscribeFilter
}

export const useRealtimeStore = defineStore('realtime', () => {
  const auth = useAuthStore()
  const status = ref<ConnectionStatus>('idle')
  const attempts = ref(0)
  const lastMessageAt = ref<number | null>(null)
  const lastError = ref<string | null>(null)

  let socket: WebSocket | null = null
  let wanted = false
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null
  let heartbeatTimer: ReturnType<typeof setInterval> | null = null
  let authFailures = 0
  const subscriptions = new Set<Subscription>()
  const seen = new Set<string>()
  const seenOrder: string[] = []

  function clearTimers(): void {
    if (reconnectTimer) clearTimeout(reconnectTimer)
    if (heartbeatTimer) clearInterval(heartbeatTimer)
    reconnectTimer = heartbeatTimer = null
  }

  function subscribe<K extends RealtimeEventType>(
    type: K | '*',
    handler: RealtimeHandler<K>,
    filter: SubscribeFilter = {},
  ): () => void {
    const sub: Subscription = { type, handler: handler as (event: RealtimeEvent) => void, filter }
    subscriptions.add(sub)
    return () => {
      subscriptions.delete(sub)
    }
  }

  /** Deliver one event to its subscribers (also used by tests and for locally generated events). */
  function dispatch(event: RealtimeEvent): void {
    if (event.id) {
      if (seen.has(event.id)) return
      seen.add(event.id)
      seenOrder.push(event.id)
      if (seenOrder.length > SEEN_IDS) seen.delete(seenOrder.shift()!)
    }
    for (const sub of [...subscriptions]) {
      if (sub.type !== '*' && sub.type !== event.type) continue
      if (sub.filter.bot !== undefined && sub.filter.bot !== event.bot) continue
      try {
        sub.handler(event)
      } catch (err) {
        console.error('realtime handler failed', err) // one broken handler must not starve the others
      }
    }
  }

  function onMessage(raw: unknown): void {
    lastMessageAt.value = Date.now()
    if (typeof raw !== 'string') return
    let message: { type?: unknown } | null
    try {
      message = JSON.parse(raw) as { type?: unknown }
    } catch {
      return
    }
    if (!message || typeof message.type !== 'string') return
    if (message.type === 'hello') {
      status.value = 'open'
      attempts.value = 0
      authFailures = 0
      lastError.value = null
    } else if (EVENT_TYPES.has(message.type)) {
      dispatch(message as RealtimeEvent)
    }
    // pong, token_expired (a 4401 close follows), error: nothing to deliver
  }

  function scheduleReconnect(delay?: number): void {
    if (!wanted || reconnectTimer) return
    status.value = 'reconnecting'
    const wait = delay ?? backoffDelay(attempts.value)
    attempts.value += 1
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null
      connect()
    }, wait)
  }

  async function onUnauthorized(usedToken: string): Promise<void> {
    authFailures += 1
    if (authFailures > 3) {
      scheduleReconnect() // the server keeps refusing fresh tokens: back off instead of looping
      return
    }
    let token = auth.accessToken
    try {
      if (!token || token === usedToken || jwtExpiringSoon(token)) token = await auth.refresh()
    } catch {
      scheduleReconnect() // server unreachable: try again later
      return
    }
    if (!token) {
      status.value = 'closed' // the session is over; the auth store has logged out
      wanted = false
      return
    }
    if (wanted) connect()
  }

  function connect(): void {
    if (!wanted || socket) return
    const token = auth.accessToken
    if (!token) return
    clearTimers()
    status.value = attempts.value > 0 ? 'reconnecting' : 'connecting'
    let ws: WebSocket
    try {
      ws = realtimeConfig.createSocket(realtimeConfig.url(), token)
    } catch (err) {
      lastError.value = err instanceof Error ? err.message : String(err)
      scheduleReconnect()
      return
    }
    socket = ws
    lastMessageAt.value = Date.now()
    ws.onmessage = (event: MessageEvent) => {
      if (socket === ws) onMessage(event.data)
    }
    ws.onclose = (event: CloseEvent) => {
      if (socket !== ws) return
      socket = null
      if (heartbeatTimer) clearInterval(heartbeatTimer)
      heartbeatTimer = null
      if (!wanted) {
        status.value = 'closed'
        return
      }
      if (event.code === CLOSE_UNAUTHORIZED) void onUnauthorized(token)
      else {
        lastError.value = event.reason || `closed (${event.code})`
        scheduleReconnect()
      }
    }
    ws.onerror = () => {
      lastError.value = 'websocket error' // a close event follows and reconnects
    }
    heartbeatTimer = setInterval(() => {
      if (socket !== ws) return
      if (Date.now() - (lastMessageAt.value ?? 0) > realtimeConfig.staleMs) {
        lastError.value = 'no answer from the server'
        dropSocket()
        scheduleReconnect()
        return
      }
      if (ws.readyState === 1) ws.send(JSON.stringify({ type: 'ping' }))
    }, realtimeConfig.heartbeatMs)
  }

  function dropSocket(): void {
    const ws = socket
    socket = null
    if (heartbeatTimer) clearInterval(heartbeatTimer)
    heartbeatTimer = null
    if (ws) {
      ws.onclose = ws.onmessage = ws.onerror = null
      try {
        ws.close(1000)
      } catch {
        /* already closed */
      }
    }
  }

  /** Open the connection (and keep it open) while logged in. */
  function start(): void {
    wanted = true
    connect()
  }

  /** Close the connection and stop reconnecting. */
  function stop(): void {
    wanted = false
    clearTimers()
    dropSocket()
    attempts.value = 0
    authFailures = 0
    status.value = 'closed'
  }

  /** Reconnect at once when waiting to (the network came back, the tab became visible). */
  function wake(): void {
    if (!wanted || socket) return
    if (reconnectTimer) clearTimeout(reconnectTimer)
    reconnectTimer = null
    connect()
  }

  watch(
    () => auth.isAuthenticated,
    (on) => (on ? start() : stop()),
    { immediate: true },
  )

  if (typeof window !== 'undefined') {
    window.addEventListener('online', wake)
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') wake()
    })
  }

  return { status, attempts, lastMessageAt, lastError, subscribe, dispatch, start, stop, wake }
})
