import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { allowedActions, useBotDetailStore } from '@/views/bot-detail/store'
import { diffConfigs, explain, showValue } from '@/views/bot-detail/diff'
import type { RealtimeEvent } from '@/stores/realtime'
import { json, mockFetch } from './helpers'

const BOT = { id: 3, owner: 1, name: 'g', strategy: 'grid', mode: 'live', exchange: 'binance', symbol: 'BTC/USDT',
  exchange_account: 1, config: {}, config_version: 1, status: 'running', status_message: '', runtime_id: 'x',
  groups: [], created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' }
const STATE = { bot: 3, name: 'g', status: 'running', status_message: '', symbol: 'BTC/USDT', base: 'BTC', quote: 'USDT',
  exchange: 'binance', mode: 'live', source: 'runtime', last_price: '100000', price_timestamp: 1000, strategy_state: null,
  buying: null, levels: [], layers: [], open_orders: [{ client_id: 'a', side: 'buy', type: 'limit', price: '99000',
    amount: '0.01', filled: '0', status: 'open', layer: 0, level: 0, tag: 'grid' }],
  position: { base: '0', reserve: null, cost_basis: '0', avg_entry_price: null, quote_flow: '0' },
  pnl: { realized: '0', grid_profit: '0', unrealized: null, fees: {}, buy_fills: 0, sell_fills: 0 },
  per_level_profit: [], error: null }
const FILL = { id: 9, bot: 3, trade_id: 't1', client_id: 'a', symbol: 'BTC/USDT', side: 'buy', price: '99000',
  amount: '0.01', fee: '0.99', fee_currency: 'USDT', ts: 500, time: '', is_maker: true, order_complete: true, run: 1 }

function routes(extra: Record<string, () => Response> = {}) {
  return mockFetch({
    'GET /api/v1/bots/3/': () => json(200, BOT),
    'GET /api/v1/bots/3/state/': () => json(200, STATE),
    'GET /api/v1/fills/': () => json(200, { count: 1, results: [FILL] }),
    'GET /api/v1/events/': () => json(200, { count: 0, results: [] }),
    'GET /api/v1/bots/3/snapshots/': () => json(200, []),
    ...extra,
  })
}
function fillEvent(trade: string, bot = 3): RealtimeEvent<'fill'> {
  return { type: 'fill', bot, ts: 2000, data: { trade_id: trade, client_id: 'b', symbol: 'BTC/USDT', side: 'sell',
    price: '101000', amount: '0.01', fee: '1.01', fee_currency: 'USDT', is_maker: true } }
}

beforeEach(() => {
  setActivePinia(createPinia())
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

describe('bot detail store', () => {
  it('loads the bot, its state, fills, events and history', async () => {
    const { calls } = routes()
    const store = useBotDetailStore()
    await store.load(3)
    expect(store.error).toBeNull()
    expect(store.bot?.name).toBe('g')
    expect(store.state?.open_orders).toHaveLength(1)
    expect(store.fills.map((f) => f.trade_id)).toEqual(['t1'])
    expect(store.ticks).toEqual([[1000, '100000']])
    const fills = calls.find((c) => c.path.startsWith('/api/v1/fills/'))!
    expect(fills.path).toContain('bot=3')
  })

  it('prepends a live fill once, ignores other bots, and refreshes the state', async () => {
    vi.useFakeTimers()
    const { calls } = routes()
    const store = useBotDetailStore()
    await store.load(3)
    const before = calls.filter((c) => c.path.startsWith('/api/v1/bots/3/state/')).length
    expect(store.onFill(fillEvent('t2'))).toBe(true)
    expect(store.onFill(fillEvent('t2'))).toBe(false) // the same trade twice
    expect(store.onFill(fillEvent('t3', 4))).toBe(false) // another bot
    expect(store.fills.map((f) => f.trade_id)).toEqual(['t2', 't1'])
    expect(store.fillsCount).toBe(2)
    expect(store.ticks.at(-1)).toEqual([2000, '101000'])
    await vi.advanceTimersByTimeAsync(500)
    expect(calls.filter((c) => c.path.startsWith('/api/v1/bots/3/state/')).length).toBe(before + 1)
  })

  it('applies pnl ticks and status changes from the websocket', async () => {
    routes()
    const store = useBotDetailStore()
    await store.load(3)
    store.onPnl({ type: 'pnl', bot: 3, ts: 3000, data: { price: '100500', equity: null, grid_profit: '1.5',
      realized_pnl: '2', unrealized_pnl: '-0.5', base: null, quote_flow: null } })
    expect(store.state?.last_price).toBe('100500')
    expect(store.state?.pnl.grid_profit).toBe('1.5')
    expect(store.state?.pnl.unrealized).toBe('-0.5')
    store.onStatus({ type: 'bot_status', bot: 3, ts: 3001, data: { status: 'paused', message: 'by user' } })
    expect(store.bot?.status).toBe('paused')
    expect(store.bot?.status_message).toBe('by user')
  })

  it('stops with the chosen options and keeps the answer', async () => {
    const { calls } = routes({ 'POST /api/v1/bots/3/stop/': () => json(200, { ...BOT, status: 'stopped' }) })
    const store = useBotDetailStore()
    await store.load(3)
    await store.act('stop', { cancel_orders: false, sell_all: true })
    const stop = calls.find((c) => c.path === '/api/v1/bots/3/stop/')!
    expect(JSON.parse(stop.body)).toEqual({ cancel_orders: false, sell_all: true })
    expect(store.bot?.status).toBe('stopped')
  })

  it('reports a missing bot as an error', async () => {
    mockFetch({ 'GET /api/v1/bots/3/': () => json(404, { detail: 'Not found.' }) })
    const store = useBotDetailStore()
    await store.load(3)
    expect(store.error?.status).toBe(404)
    expect(store.bot).toBeNull()
  })

  it('offers the actions the status allows', () => {
    expect(allowedActions('running')).toEqual(['pause', 'stop'])
    expect(allowedActions('paused')).toEqual(['resume', 'stop'])
    expect(allowedActions('stopped')).toEqual(['start'])
    expect(allowedActions(undefined)).toEqual([])
  })
})

describe('config diff', () => {
  it('lists changed, added and removed paths; lists compare whole', () => {
    const rows = diffConfigs({ grid: { lower: '1', upper: '2' }, layers: [1, 2], a: 1 }, { grid: { lower: '1', upper: '3' }, layers: [1, 2, 3], b: true })
    expect(rows).toEqual([
      { path: 'a', kind: 'removed', old: 1, new: undefined },
      { path: 'b', kind: 'added', old: undefined, new: true },
      { path: 'grid.upper', kind: 'changed', old: '2', new: '3' },
      { path: 'layers', kind: 'changed', old: [1, 2], new: [1, 2, 3] },
    ])
    expect(diffConfigs({ x: 1 }, { x: 1 })).toEqual([])
    expect(showValue(undefined)).toBe('—')
    expect(showValue({ a: 1 })).toBe('{"a":1}')
  })

  it('explains a risk event from its data', () => {
    expect(explain({ rule: 'stop loss', explanation: 'price < 90000', values: { price: '89000' }, empty: '' })).toEqual([
      ['rule', 'stop loss'], ['explanation', 'price < 90000'], ['values', '{"price":"89000"}']])
    expect(explain(null)).toEqual([])
  })
})
