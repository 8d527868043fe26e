import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { batchRows, patchFromPath, useBotsStore } from '@/views/bots/store'
import { json, mockFetch } from './helpers'

const bot = (id: number, status = 'stopped', groups: number[] = []) => ({
  id, owner: 1, name: `bot ${id}`, strategy: 'grid', mode: 'paper', exchange: 'binance', symbol: 'BTC/USDT',
  exchange_account: null, config: { grid: { lower: '100', upper: '200', levels: 5 } }, config_version: 1, status,
  status_message: '', runtime_id: '', groups, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
})

beforeEach(() => {
  setActivePinia(createPinia())
  vi.unstubAllGlobals()
})

describe('bots store', () => {
  it('loads a filtered page and the last prices of its bots', async () => {
    const { calls } = mockFetch({
      'GET /api/v1/bots/': () => json(200, { count: 2, results: [bot(1), bot(2)] }),
      'GET /api/v1/bots/1/state/': () => json(200, { last_price: '150.5' }),
      'GET /api/v1/bots/2/state/': () => json(503, { detail: 'down' }),
    })
    const store = useBotsStore()
    store.filters.status = ['running', 'paused']
    store.filters.symbol = ' btc/usdt '
    store.filters.group = 4
    await store.load()
    await vi.waitFor(() => expect(store.prices[2]).toBeNull())
    const list = new URL(`http://x${calls[0]!.path}`)
    expect(list.searchParams.getAll('status')).toEqual(['running', 'paused'])
    expect(list.searchParams.get('symbol')).toBe('BTC/USDT')
    expect(list.searchParams.get('group')).toBe('4')
    expect(list.searchParams.get('mode')).toBeNull()
    expect(store.bots.map((b) => b.id)).toEqual([1, 2])
    expect(store.count).toBe(2)
    expect(store.prices[1]).toBe('150.5')
  })

  it('runs a batch, keeps the per-bot results and updates the statuses of the bots that succeeded', async () => {
    const response = {
      action: 'start', ok: 1, failed: 2,
      results: [
        { bot: 1, ok: true, status: 'running' },
        { bot: 2, ok: false, error: 'the bot is running' },
        { bot: 99, ok: false, error: 'not found' },
      ],
    }
    const { calls } = mockFetch({
      'GET /api/v1/bots/': () => json(200, { count: 2, results: [bot(1), bot(2, 'running')] }),
      'GET /api/v1/bots/1/state/': () => json(200, { last_price: null }),
      'GET /api/v1/bots/2/state/': () => json(200, { last_price: null }),
      'POST /api/v1/bots/batch/': () => json(200, response),
    })
    const store = useBotsStore()
    await store.load()
    const result = await store.batch('start', { bot_ids: [1, 2, 99] })
    const post = calls.find((c) => c.method === 'POST')!
    expect(JSON.parse(post.body)).toEqual({ bot_ids: [1, 2, 99], action: 'start', params: {} })
    expect(result.failed).toBe(2)
    expect(store.lastBatch).toEqual(response)
    expect(store.bots.find((b) => b.id === 1)!.status).toBe('running')
    expect(store.bots.find((b) => b.id === 2)!.status).toBe('running')
    const rows = batchRows(result, store.bots)
    expect(rows.map((r) => [r.bot, r.name, r.ok, r.error ?? null])).toEqual([
      [1, 'bot 1', true, null],
      [2, 'bot 2', false, 'the bot is running'],
      [99, '#99', false, 'not found'],
    ])
  })

  it('sends stop options and an edit as a merge patch; a refused batch throws the server message', async () => {
    const bodies: unknown[] = []
    mockFetch({
      'POST /api/v1/bots/batch/': (c) => {
        const body = JSON.parse(c.body)
        bodies.push(body)
        if (body.action === 'apply_risk_template') return json(400, { params: { template: ['no such risk template'] } })
        return json(200, { action: body.action, ok: 1, failed: 0, results: [{ bot: 1, ok: true, status: 'stopped', version: 3 }] })
      },
    })
    const store = useBotsStore()
    await store.batch('stop', { group: 7 }, { cancel_orders: true, sell_all: false })
    await store.batch('edit', { bot_ids: [1] }, { config: patchFromPath('grid.levels', 30) })
    expect(bodies).toEqual([
      { group: 7, action: 'stop', params: { cancel_orders: true, sell_all: false } },
      { bot_ids: [1], action: 'edit', params: { config: { grid: { levels: 30 } } } },
    ])
    await expect(store.batch('apply_risk_template', { bot_ids: [1] }, { template: 5 })).rejects.toMatchObject({
      status: 400, fieldErrors: { 'params.template': ['no such risk template'] },
    })
  })

  it('applies live status events and manages group membership', async () => {
    mockFetch({
      'GET /api/v1/bots/': () => json(200, { count: 2, results: [bot(1), bot(2, 'running', [3])] }),
      'GET /api/v1/bots/1/state/': () => json(200, { last_price: null }),
      'GET /api/v1/bots/2/state/': () => json(200, { last_price: null }),
      'POST /api/v1/groups/3/add/': () => json(200, { id: 3, owner: 1, name: 'fleet', bot_ids: [1, 2], created_at: '' }),
      'DELETE /api/v1/groups/3/': () => new Response(null, { status: 204 }),
    })
    const store = useBotsStore()
    await store.load()
    store.groups = [{ id: 3, owner: 1, name: 'fleet', bot_ids: [2], created_at: '' }]
    store.applyStatus(2, 'paused', 'risk rule dd')
    expect(store.bots[1]!.status).toBe('paused')
    expect(store.bots[1]!.status_message).toBe('risk rule dd')
    store.applyPrice(1, '123.4')
    expect(store.prices[1]).toBe('123.4')
    await store.assign(3, [1])
    expect(store.bots[0]!.groups).toEqual([3])
    expect(store.groups[0]!.bot_ids).toEqual([1, 2])
    store.filters.group = 3
    await store.deleteGroup(3)
    expect(store.groups).toEqual([])
    expect(store.filters.group).toBeNull()
  })
})
