import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { ratePercent, useBillingStore } from '@/views/billing/store'
import { drawdownSeries } from '@/views/analytics/series'
import { json, mockFetch } from './helpers'

const BALANCE = { user: 1, username: 'u', balance: '0', currency: 'USDT', minimum_balance: null, agent_payable: null,
  withdrawable: null, pending_payouts: null }
const GUARD = { balance: '0', fees_due: '0', min_balance: '0', currency: 'USDT', active_bots: 0, guard: 'ok', reason: '', fee_rate: '0.2' }

beforeEach(() => {
  setActivePinia(createPinia())
  vi.unstubAllGlobals()
})

describe('billing store', () => {
  it('formats fee rates exactly', () => {
    expect(ratePercent('0.2')).toBe('20%')
    expect(ratePercent('0.125')).toBe('12.5%')
    expect(ratePercent('0.00010000')).toBe('0.01%')
    expect(ratePercent('1')).toBe('100%')
    expect(ratePercent(null)).toBe('—')
  })

  it('redeems a voucher and reloads the balance', async () => {
    let balance = '0'
    const { calls } = mockFetch({
      'GET /api/v1/billing/balance/': () => json(200, { ...BALANCE, balance }),
      'GET /api/v1/billing/guard/': () => json(200, { ...GUARD, balance }),
      'POST /api/v1/billing/redeem/': () => {
        balance = '25'
        return json(201, { amount: '25', balance: '25', currency: 'USDT', transaction: 1 })
      },
    })
    const store = useBillingStore()
    await store.load()
    expect(store.balance?.balance).toBe('0')
    const r = await store.redeem('  CODE-123 ')
    expect(JSON.parse(calls.find((c) => c.method === 'POST')!.body)).toEqual({ code: 'CODE-123' })
    expect(r.amount).toBe('25')
    expect(store.balance?.balance).toBe('25')
    expect(store.standing?.fee_rate).toBe('0.2')
  })

  it('passes a refused code on with the server message', async () => {
    mockFetch({ 'POST /api/v1/billing/redeem/': () => json(400, { code: ['unknown or already used code'] }) })
    const store = useBillingStore()
    await expect(store.redeem('bad')).rejects.toMatchObject({ status: 400, fieldErrors: { code: ['unknown or already used code'] } })
  })
})

describe('analytics series', () => {
  it('computes drawdown below the running peak', () => {
    const dd = drawdownSeries([[1, '100'], [2, '120'], [3, '90'], [4, null], [5, '130']])
    expect(dd.map((d) => d.amount)).toEqual([0, 0, -30, 0])
    expect(dd[2]!.pct).toBeCloseTo(-25)
    expect(drawdownSeries([[1, '-5'], [2, '-10']]).map((d) => d.pct)).toEqual([null, null])
  })
})
