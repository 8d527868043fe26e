/** Risk templates: list, save (create or update), delete and apply to bots or a group (per-bot results). */
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { api, call } from '@/api/client'
import { toApiError, type ApiError } from '@/api/errors'
import type { Schemas } from '@/api/types'
import { normalizeRule, type RiskRule } from './tree'
import { jsonClone } from '../bots/schemaForm'

export type RiskTemplate = Schemas['RiskTemplate']

export interface TemplateDraft {
  id: number | null
  name: string
  description: string
  shared: boolean
  rules: RiskRule[]
}

export const useRiskStore = defineStore('risk', () => {
  const templates = ref<RiskTemplate[]>([])
  const loading = ref(false)
  const error = shallowRef<ApiError | null>(null)

  async function load(): Promise<void> {
    loading.value = true
    try {
      const page = await call(api.GET('/api/v1/risk-templates/', { params: { query: { limit: 500 } } }))
      templates.value = page.results
      error.value = null
    } catch (e) {
      error.value = toApiError(e)
    } finally {
      loading.value = false
    }
  }

  /** Create or update; throws ApiError with field messages (`rules.0.when.value`…) on invalid rules. */
  async function save(draft: TemplateDraft): Promise<RiskTemplate> {
    const body = { name: draft.name, description: draft.description, rules: draft.rules, ...(draft.shared ? { shared: true } : {}) }
    const saved = draft.id === null
      ? await call(api.POST('/api/v1/risk-templates/', { body }))
      : await call(api.PATCH('/api/v1/risk-templates/{id}/', { params: { path: { id: String(draft.id) } }, body: { ...body, shared: draft.shared } }))
    const rest = templates.value.filter((x) => x.id !== saved.id)
    templates.value = [...rest, saved].sort((a, b) => a.name.localeCompare(b.name))
    return saved
  }

  async function remove(id: number): Promise<void> {
    await call(api.DELETE('/api/v1/risk-templates/{id}/', { params: { path: { id: String(id) } } }))
    templates.value = templates.value.filter((x) => x.id !== id)
  }

  async function apply(id: number, target: { bot_ids: number[] } | { group: number }): Promise<Schemas['BatchResponse']> {
    return call(api.POST('/api/v1/risk-templates/{id}/apply/', { params: { path: { id: String(id) } }, body: target }))
  }

  return { templates, loading, error, load, save, remove, apply }
})

/** A draft from a stored template (or a new empty one). */
export function draftOf(template: RiskTemplate | null): TemplateDraft {
  if (!template) return { id: null, name: '', description: '', shared: false, rules: [] }
  return {
    id: template.id,
    name: template.name,
    description: template.description ?? '',
    shared: Boolean(template.shared),
    rules: jsonClone((template.rules ?? []) as RiskRule[]).map(normalizeRule),
  }
}
