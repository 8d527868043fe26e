/**
 * Bot detail state: the bot, its live state (/bots/{id}/state/), fills, events and config history, kept current
 * by the websocket (fill → prepended + state refreshed, pnl → price tick and PnL, bot_status → status).
 */
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { api, call } from '@/api/client'
import { toApiError, type ApiError } from '@/api/errors'
import type { Schemas } from '@/api/types'
import type { RealtimeEvent } from '@/stores/realtime'

export type BotState = Schemas['BotState']
export type Fill = Schemas['Fill']
export type JournalEntry = Schemas['JournalEntry']
export type ConfigSnapshot = Schemas['ConfigSnapshot']
export type Bot = Schemas['Bot']
export type BotAction = 'start' | 'pause' | 'resume' | 'stop'

const MAX_TICKS = 2000
const MAX_FILLS = 200

/** Which actions a bot in `status` allows. */
export function allowedActions(status: string | undefined): BotAction[] {
  switch (status) {
    case 'running':
      return ['pause', 'stop']
    case 'paused':
      return ['resume', 'stop']
    case 'created':
    case 'stopped':
    case 'error':
      return ['start']
    default:
      return []
  }
}

export const useBotDetailStore = defineStore('bot-detail', () => {
  const id = ref<number | null>(null)
  const bot = shallowRef<Bot | null>(null)
  const state = shallowRef<BotState | null>(null)
  const fills = ref<Fill[]>([])
  const fillsCount = ref(0)
  const events = ref<JournalEntry[]>([])
  const snapshots = ref<ConfigSnapshot[]>([])
  const ticks = ref<[number, string][]>([])
  const loading = ref(false)
  const error = shallowRef<ApiError | null>(null)
  const stateError = shallowRef<ApiError | null>(null)
  let stateTimer: ReturnType<typeof setTimeout> | null = null

  async function loadState(): Promise<void> {
    if (id.value === null) return
    try {
      state.value = await call(api.GET('/api/v1/bots/{id}/state/', { params: { path: { id: String(id.value) } } }))
      stateError.value = null
      const s = state.value
      if (s?.last_price) pushTick(s.price_timestamp ?? Date.now(), s.last_price)
    } catch (e) {
      stateError.value = toApiError(e)
    }
  }

  async function loadFills(): Promise<void> {
    if (id.value === null) return
    const page = await call(api.GET('/api/v1/fills/', { params: { query: { bot: id.value, limit: MAX_FILLS, ordering: '-ts' } } }))
    fills.value = page.results
    fillsCount.value = page.count
  }

  async function loadEvents(): Promise<void> {
    if (id.value === null) return
    const page = await call(api.GET('/api/v1/events/', { params: { query: { bot: id.value, limit: 100, ordering: '-ts' } } }))
    events.value = page.results
  }

  async function loadSnapshots(): Promise<void> {
    if (id.value === null) return
    snapshots.value = await call(api.GET('/api/v1/bots/{id}/snapshots/', { params: { path: { id: String(id.value) } } }))
  }

  async function load(botId: number): Promise<void> {
    if (id.value !== botId) {
      bot.value = null
      state.value = null
      fills.value = []
      events.value = []
      snapshots.value = []
      ticks.value = []
    }
    id.value = botId
    loading.value = true
    error.value = null
    try {
      bot.value = await call(api.GET('/api/v1/bots/{id}/', { params: { path: { id: String(botId) } } }))
      await Promise.all([loadState(), loadFills(), loadEvents(), loadSnapshots()])
    } catch (e) {
      error.value = toApiError(e)
    } finally {
      loading.value = false
    }
  }

  function pushTick(ts: number, price: string): void {
    const last = ticks.value[ticks.value.length - 1]
    if (last && last[0] >= ts) return
    ticks.value.push([ts, price])
    if (ticks.value.length > MAX_TICKS) ticks.value.splice(0, ticks.value.length - MAX_TICKS)
  }

  function refreshStateSoon(delay = 400): void {
    if (stateTimer) clearTimeout(stateTimer)
    stateTimer = setTimeout(() => {
      stateTimer = null
      void loadState()
    }, delay)
  }

  /** A websocket fill for this bot: prepend it (once) and refresh the state. Returns true when it was new. */
  function onFill(e: RealtimeEvent<'fill'>): boolean {
    if (e.bot !== id.value) return false
    const d = e.data
    if (fills.value.some((f) => f.trade_id === d.trade_id)) return false
    const row: Fill = {
      id: -Date.now(),
      bot: e.bot,
      trade_id: d.trade_id,
      client_id: d.client_id ?? '',
      symbol: d.symbol,
      side: d.side,
      price: d.price,
      amount: d.amount,
      fee: d.fee ?? '0',
      fee_currency: d.fee_currency ?? '',
      ts: e.ts,
      time: new Date(e.ts).toISOString(),
      is_maker: d.is_maker ?? false,
      order_complete: true,
      run: 0,
    }
    fills.value = [row, ...fills.value].slice(0, MAX_FILLS)
    fillsCount.value += 1
    pushTick(e.ts, d.price)
    refreshStateSoon()
    return true
  }

  function onPnl(e: RealtimeEvent<'pnl'>): void {
    if (e.bot !== id.value) return
    if (e.data.price) pushTick(e.ts, e.data.price)
    const s = state.value
    if (s) {
      state.value = {
        ...s,
        last_price: e.data.price ?? s.last_price,
        pnl: {
          ...s.pnl,
          grid_profit: e.data.grid_profit ?? s.pnl.grid_profit,
          realized: e.data.realized_pnl ?? s.pnl.realized,
          unrealized: e.data.unrealized_pnl ?? s.pnl.unrealized,
        },
      }
    }
  }

  function onStatus(e: RealtimeEvent<'bot_status'>): void {
    if (e.bot !== id.value || !bot.value) return
    bot.value = { ...bot.value, status: e.data.status as Bot['status'], status_message: e.data.message ?? bot.value.status_message }
    refreshStateSoon()
    void loadEvents().catch(() => undefined)
  }

  function onRiskAlert(e: RealtimeEvent<'risk_alert'>): void {
    if (e.bot !== id.value) return
    void loadEvents().catch(() => undefined)
  }

  async function act(action: BotAction, stop: { cancel_orders: boolean; sell_all: boolean } = { cancel_orders: true, sell_all: false }): Promise<void> {
    if (id.value === null) return
    const path = { params: { path: { id: String(id.value) } } }
    let next: Bot
    if (action === 'start') next = await call(api.POST('/api/v1/bots/{id}/start/', path))
    else if (action === 'pause') next = await call(api.POST('/api/v1/bots/{id}/pause/', path))
    else if (action === 'resume') next = await call(api.POST('/api/v1/bots/{id}/resume/', path))
    else next = await call(api.POST('/api/v1/bots/{id}/stop/', { ...path, body: stop }))
    bot.value = next
    await Promise.all([loadState(), loadEvents().catch(() => undefined)])
  }

  function dispose(): void {
    if (stateTimer) clearTimeout(stateTimer)
    stateTimer = null
  }

  return {
    id, bot, state, fills, fillsCount, events, snapshots, ticks, loading, error, stateError,
    load, loadState, loadFills, loadEvents, loadSnapshots, onFill, onPnl, onStatus, onRiskAlert, act, dispose, pushTick,
  }
})
