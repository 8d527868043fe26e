// Short names for the generated OpenAPI types (src/api/schema.d.ts, regenerate with `npm run gen:api`).
import type { components, paths } from './schema'

export type { components, paths }
export type Schemas = components['schemas']
export type Role = Schemas['RoleEnum']
export type Me = Schemas['Me']
export type Bot = Schemas['Bot']
export type BotStatus = Schemas['BotStatusEnum']
export type ExchangeAccount = Schemas['ExchangeAccount']
export type ExchangeAccountRequest = Schemas['ExchangeAccountRequest']
export type PatchedExchangeAccountRequest = Schemas['PatchedExchangeAccountRequest']
export type ConnectionTest = Schemas['ConnectionTest']
export type Notification = Schemas['Notification']
export type UserAnalytics = Schemas['UserAnalytics']
export type DailyProfit = Schemas['DailyProfit']

/** A DRF limit/offset page. */
export interface Page<T> {
  count: number
  next?: string | null
  previous?: string | null
  results: T[]
}
