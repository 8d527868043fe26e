/** GET /api/v1/agents/me/ (the server declares it as a free-form object). */
export interface AgentSummary {
  agent: number
  username: string
  referral_code: string | null
  commission_rate: string
  currency: string
  clients: { id: number; username: string; running_bots: number; fees: string; fee_rate: string }[]
  running_bots: { id: number; name: string; symbol: string; owner: number }[]
  fees_generated: string
  fees_due: string
  commission: { earned: string; pending: string; withdrawable: string; paid: string }
  periods: { period: string; fees: string; commission: string }[]
}
