/** Billing: the caller's balance and guard standing, and redeeming a voucher (which refreshes both). */
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { api, call } from '@/api/client'
import { toApiError, type ApiError } from '@/api/errors'
import type { Schemas } from '@/api/types'

export type Balance = Schemas['Balance']
export interface Standing {
  balance: string
  fees_due: string
  min_balance: string
  currency: string
  active_bots: number
  guard: 'ok' | 'warned' | 'paused' | string
  reason: string
  fee_rate: string
}

/** A fee rate as the API sends it ("0.2") → "20%" (string arithmetic: no float rounding). */
export function ratePercent(rate: string | null | undefined): string {
  if (rate === null || rate === undefined || rate === '') return '—'
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(rate.trim())
  if (!m) return rate
  const intPart = m[2] || '0'
  const frac = (m[3] ?? '').padEnd(2, '0')
  const whole = (intPart + frac.slice(0, 2)).replace(/^0+(?=\d)/, '')
  const rest = frac.slice(2).replace(/0+$/, '')
  return `${m[1]}${whole}${rest ? `.${rest}` : ''}%`
}

export const useBillingStore = defineStore('billing', () => {
  const balance = shallowRef<Balance | null>(null)
  const standing = shallowRef<Standing | null>(null)
  const loading = ref(false)
  const error = shallowRef<ApiError | null>(null)

  async function load(): Promise<void> {
    loading.value = true
    try {
      const [b, s] = await Promise.all([
        call(api.GET('/api/v1/billing/balance/')),
        call(api.GET('/api/v1/billing/guard/')) as Promise<unknown> as Promise<Standing>,
      ])
      balance.value = b
      standing.value = s
      error.value = null
    } catch (e) {
      error.value = toApiError(e)
    } finally {
      loading.value = false
    }
  }

  /** Redeem a voucher code; returns the server's answer (amount, new balance). Throws ApiError on refusal. */
  async function redeem(code: string): Promise<Schemas['RedeemResult']> {
    const result = await call(api.POST('/api/v1/billing/redeem/', { body: { code: code.trim() } }))
    await load()
    return result
  }

  return { balance, standing, loading, error, load, redeem }
})
