/** Trades page: the filters (kept in the URL query), one page of orders or fills, and the exports. */
import { defineStore } from 'pinia'
import { reactive, ref, shallowRef } from 'vue'
import { api, call, download } from '@/api/client'
import { toApiError, type ApiError } from '@/api/errors'
import type { Schemas } from '@/api/types'

export type Order = Schemas['Order']
export type Fill = Schemas['Fill']
export type TradeKind = 'orders' | 'fills'

export interface TradeFilters {
  bot: number | undefined
  symbol: string
  side: '' | 'buy' | 'sell'
  status: string
  from: string
  to: string
}

/** The API query for the filters: empty values left out; `status` only applies to orders. */
export function toQuery(kind: TradeKind, f: TradeFilters): Record<string, string | number> {
  const q: Record<string, string | number> = {}
  if (f.bot !== undefined) q.bot = f.bot
  if (f.symbol.trim()) q.symbol = f.symbol.trim().toUpperCase()
  if (f.side) q.side = f.side
  if (kind === 'orders' && f.status) q.status = f.status
  if (f.from) q.from = f.from
  if (f.to) q.to = f.to
  return q
}

export const useTradesStore = defineStore('trades', () => {
  const kind = ref<TradeKind>('fills')
  const filters = reactive<TradeFilters>({ bot: undefined, symbol: '', side: '', status: '', from: '', to: '' })
  const page = ref(1)
  const pageSize = ref(50)
  const rows = shallowRef<(Order | Fill)[]>([])
  const count = ref(0)
  const loading = ref(false)
  const error = shallowRef<ApiError | null>(null)
  const exporting = ref<'' | 'csv' | 'xlsx'>('')
  let generation = 0

  async function load(): Promise<void> {
    const mine = ++generation
    loading.value = true
    const query = { ...toQuery(kind.value, filters), limit: pageSize.value, offset: (page.value - 1) * pageSize.value, ordering: kind.value === 'fills' ? '-ts' : '-created_at' }
    try {
      const result =
        kind.value === 'orders'
          ? await call(api.GET('/api/v1/orders/', { params: { query: query as never } }))
          : await call(api.GET('/api/v1/fills/', { params: { query: query as never } }))
      if (mine !== generation) return
      rows.value = result.results
      count.value = result.count
      error.value = null
    } catch (e) {
      if (mine === generation) error.value = toApiError(e)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  async function exportAs(format: 'csv' | 'xlsx'): Promise<void> {
    exporting.value = format
    try {
      const stamp = new Date().toISOString().slice(0, 10)
      await download(`/api/v1/${kind.value}/`, { ...toQuery(kind.value, filters), format }, `${kind.value}-${stamp}.${format}`)
    } finally {
      exporting.value = ''
    }
  }

  function resetFilters(): void {
    Object.assign(filters, { bot: undefined, symbol: '', side: '', status: '', from: '', to: '' })
    page.value = 1
  }

  return { kind, filters, page, pageSize, rows, count, loading, error, exporting, load, exportAs, resetFilters }
})
