import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { toQuery, useTradesStore } from '@/views/trades/store'
import { json, mockFetch } from './helpers'

beforeEach(() => {
  setActivePinia(createPinia())
  vi.unstubAllGlobals()
})

describe('trades store', () => {
  it('turns the filters into the API query (status only for orders)', () => {
    const f = { bot: 4, symbol: ' btc/usdt ', side: 'sell' as const, status: 'filled', from: '2026-01-01', to: '' }
    expect(toQuery('orders', f)).toEqual({ bot: 4, symbol: 'BTC/USDT', side: 'sell', status: 'filled', from: '2026-01-01' })
    expect(toQuery('fills', f)).toEqual({ bot: 4, symbol: 'BTC/USDT', side: 'sell', from: '2026-01-01' })
    expect(toQuery('fills', { bot: undefined, symbol: '', side: '', status: '', from: '', to: '' })).toEqual({})
  })

  it('loads one page with limit/offset and keeps the count', async () => {
    const { calls } = mockFetch({ 'GET /api/v1/orders/': () => json(200, { count: 120, results: [{ id: 1 }, { id: 2 }] }) })
    const store = useTradesStore()
    store.kind = 'orders'
    store.filters.status = 'open'
    store.page = 3
    store.pageSize = 50
    await store.load()
    const q = new URL(calls[0]!.path, 'http://x').searchParams
    expect(q.get('offset')).toBe('100')
    expect(q.get('limit')).toBe('50')
    expect(q.get('status')).toBe('open')
    expect(q.get('ordering')).toBe('-created_at')
    expect(store.count).toBe(120)
    expect(store.rows).toHaveLength(2)
  })

  it('shows a server error and keeps going', async () => {
    mockFetch({ 'GET /api/v1/fills/': () => json(400, { from: ['invalid time'] }) })
    const store = useTradesStore()
    store.filters.from = 'nope'
    await store.load()
    expect(store.error?.status).toBe(400)
    expect(store.error?.fieldErrors.from).toEqual(['invalid time'])
    expect(store.loading).toBe(false)
  })

  it('exports the filtered rows through the authenticated client', async () => {
    const { calls } = mockFetch({ 'GET /api/v1/fills/': () => new Response('id,side\n1,buy\n', { status: 200, headers: { 'Content-Type': 'text/csv' } }) })
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(() => undefined)
    URL.createObjectURL = vi.fn(() => 'blob:x')
    URL.revokeObjectURL = vi.fn()
    const store = useTradesStore()
    store.filters.bot = 7
    await store.exportAs('csv')
    const q = new URL(calls[0]!.path, 'http://x').searchParams
    expect(q.get('format')).toBe('csv')
    expect(q.get('bot')).toBe('7')
    expect(click).toHaveBeenCalled()
    expect(store.exporting).toBe('')
  })
})
