/**
 * Bots list state: the page of bots with its filters, groups, per-bot profit and last price, live status over the
 * websocket, and batch actions with per-bot results (POST /api/v1/bots/batch/ never fails all-or-nothing).
 */
import { defineStore } from 'pinia'
import { reactive, ref, shallowRef } from 'vue'
import { api, call } from '@/api/client'
import { toApiError, type ApiError } from '@/api/errors'
import type { Bot, BotStatus, Schemas } from '@/api/types'

export type BotGroup = Schemas['BotGroup']
type Mutable<T> = { -readonly [K in keyof T]: T[K] }
export type BatchAction = Schemas['BatchActionEnum']
export type BatchResponse = Schemas['BatchResponse']
export type BatchResult = Schemas['BatchResult']

export interface BotFilters {
  status: BotStatus[]
  symbol: string
  mode: '' | 'paper' | 'live'
  group: number | null
}

export interface BotProfit {
  realized_pnl: string | null
  grid_profit: string | null
  equity: string | null
}

/** One row of the batch result table: the server's result plus the bot's name and symbol when known. */
export interface BatchRow extends BatchResult {
  name: string
  symbol: string
}

/** Join the server's per-bot results with the bots' names (results for unknown ids keep "#id"). */
export function batchRows(response: BatchResponse, bots: readonly Pick<Bot, 'id' | 'name' | 'symbol'>[]): BatchRow[] {
  const byId = new Map(bots.map((b) => [b.id, b]))
  return response.results.map((r) => ({
    ...r,
    name: byId.get(r.bot)?.name ?? `#${r.bot}`,
    symbol: byId.get(r.bot)?.symbol ?? '',
  }))
}

export const useBotsStore = defineStore('bots', () => {
  const bots = ref<Bot[]>([])
  const count = ref(0)
  const page = ref(1)
  const pageSize = ref(20)
  const ordering = ref('-created_at')
  const loading = ref(false)
  const error = shallowRef<ApiError | null>(null)
  const filters = reactive<BotFilters>({ status: [], symbol: '', mode: '', group: null })
  const groups = ref<BotGroup[]>([])
  const profit = reactive<Record<number, BotProfit>>({})
  const prices = reactive<Record<number, string | null>>({})
  const lastBatch = ref<BatchResponse | null>(null)
  let generation = 0

  function query() {
    return {
      limit: pageSize.value,
      offset: (page.value - 1) * pageSize.value,
      ordering: ordering.value,
      ...(filters.status.length ? { status: filters.status } : {}),
      ...(filters.symbol.trim() ? { symbol: filters.symbol.trim().toUpperCase() } : {}),
      ...(filters.mode ? { mode: filters.mode } : {}),
      ...(filters.group !== null ? { group: filters.group } : {}),
    }
  }

  async function load(): Promise<void> {
    const mine = ++generation
    loading.value = true
    try {
      const data = await call(api.GET('/api/v1/bots/', { params: { query: query() } }))
      if (mine !== generation) return
      bots.value = data.results
      count.value = data.count
      error.value = null
      void loadPrices(data.results.map((b) => b.id))
    } catch (e) {
      if (mine === generation) error.value = toApiError(e)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  async function loadGroups(): Promise<void> {
    const data = await call(api.GET('/api/v1/groups/', { params: { query: { limit: 500 } } }))
    groups.value = data.results
  }

  /** Profit per bot from the caller's analytics (realized PnL, grid profit, equity). */
  async function loadProfit(): Promise<void> {
    const data = await call(api.GET('/api/v1/analytics/me/'))
    for (const row of (data.per_bot ?? []) as Record<string, unknown>[]) {
      const id = Number(row.bot)
      profit[id] = {
        realized_pnl: (row.realized_pnl as string | null) ?? null,
        grid_profit: (row.grid_profit as string | null) ?? null,
        equity: (row.equity as string | null) ?? null,
      }
    }
  }

  /** The last price of each listed bot (its state document); later updated by `pnl` events. */
  async function loadPrices(ids: number[]): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        try {
          const state = await call(api.GET('/api/v1/bots/{id}/state/', { params: { path: { id: String(id) } } }))
          prices[id] = state.last_price
        } catch {
          prices[id] ??= null
        }
      }),
    )
  }

  function applyStatus(botId: number, status: string, message?: string): void {
    const bot = bots.value.find((b) => b.id === botId) as Mutable<Bot> | undefined
    if (!bot) return
    bot.status = status as BotStatus
    if (message !== undefined) bot.status_message = message
  }

  function applyPrice(botId: number, price: string | null | undefined): void {
    if (price) prices[botId] = price
  }

  /** Run one action on many bots; returns (and keeps in `lastBatch`) the per-bot results. */
  async function batch(
    action: BatchAction,
    target: { bot_ids: number[] } | { group: number },
    params: Record<string, unknown> = {},
  ): Promise<BatchResponse> {
    const response = await call(api.POST('/api/v1/bots/batch/', { body: { ...target, action, params } }))
    lastBatch.value = response
    for (const r of response.results) if (r.ok && r.status) applyStatus(r.bot, r.status)
    return response
  }

  async function createGroup(name: string, botIds: number[] = []): Promise<BotGroup> {
    const group = await call(api.POST('/api/v1/groups/', { body: { name, bot_ids: botIds } }))
    groups.value = [...groups.value, group]
    return group
  }

  async function renameGroup(id: number, name: string): Promise<void> {
    const group = await call(api.PATCH('/api/v1/groups/{id}/', { params: { path: { id: String(id) } }, body: { name } }))
    groups.value = groups.value.map((g) => (g.id === id ? group : g))
  }

  async function deleteGroup(id: number): Promise<void> {
    await call(api.DELETE('/api/v1/groups/{id}/', { params: { path: { id: String(id) } } }))
    groups.value = groups.value.filter((g) => g.id !== id)
    if (filters.group === id) filters.group = null
  }

  /** Add (or remove) bots to a group; the bots' `groups` follow. */
  async function assign(groupId: number, botIds: number[], add = true): Promise<void> {
    const path = add ? '/api/v1/groups/{id}/add/' : '/api/v1/groups/{id}/remove/'
    const group = await call(api.POST(path, { params: { path: { id: String(groupId) } }, body: { bot_ids: botIds } }))
    groups.value = groups.value.map((g) => (g.id === groupId ? group : g))
    const members = new Set(group.bot_ids ?? [])
    for (const bot of bots.value as Mutable<Bot>[]) {
      const has = bot.groups.includes(groupId)
      if (members.has(bot.id) && !has) bot.groups = [...bot.groups, groupId]
      if (!members.has(bot.id) && has) bot.groups = bot.groups.filter((g) => g !== groupId)
    }
  }

  function resetFilters(): void {
    filters.status = []
    filters.symbol = ''
    filters.mode = ''
    filters.group = null
    page.value = 1
  }

  return {
    bots, count, page, pageSize, ordering, loading, error, filters, groups, profit, prices, lastBatch,
    load, loadGroups, loadProfit, loadPrices, applyStatus, applyPrice, batch, createGroup, renameGroup, deleteGroup,
    assign, resetFilters,
  }
})

/** Config paths the batch "edit one parameter" offers; integers are sent as numbers, the rest as decimal strings. */
export const EDITABLE_PATHS: Record<string, 'decimal' | 'integer'> = {
  'grid.lower': 'decimal',
  'grid.upper': 'decimal',
  'grid.levels': 'integer',
  investment: 'decimal',
  qty_per_order: 'decimal',
  'trailing.rebound_pct': 'decimal',
  'trailing.pullback_pct': 'decimal',
  slippage: 'decimal',
  'fees.maker': 'decimal',
  'fees.taker': 'decimal',
}

/** A JSON merge patch that sets one dotted path: `patchFromPath('grid.lower', '90')` → `{grid: {lower: '90'}}`. */
export function patchFromPath(path: string, value: unknown): Record<string, unknown> {
  const parts = path.split('.').filter(Boolean)
  if (!parts.length) throw new Error('empty path')
  const patch: Record<string, unknown> = {}
  let node = patch
  parts.forEach((part, i) => {
    if (i === parts.length - 1) node[part] = value
    else node = (node[part] = {}) as Record<string, unknown>
  })
  return patch
}
