import { ref, shallowRef, type Ref, type ShallowRef } from 'vue'
import { ApiError, toApiError } from '@/api/errors'

export interface AsyncState<T> {
  data: ShallowRef<T | undefined>
  loading: Ref<boolean>
  error: ShallowRef<ApiError | null>
  /** Run (again); resolves with the data, or undefined on error (which is in `error`). */
  run: () => Promise<T | undefined>
}

/**
 * Load data for a page: `const bots = useAsync(() => call(api.GET('/api/v1/bots/')))`; pass `bots.loading`,
 * `bots.error`, emptiness and `bots.run` (retry) to <AsyncState>. A newer run wins over an older one.
 */
export function useAsync<T>(fn: () => Promise<T>, options: { immediate?: boolean } = {}): AsyncState<T> {
  const data = shallowRef<T>()
  const loading = ref(false)
  const error = shallowRef<ApiError | null>(null)
  let generation = 0

  async function run(): Promise<T | undefined> {
    const mine = ++generation
    loading.value = true
    try {
      const result = await fn()
      if (mine === generation) {
        data.value = result
        error.value = null
      }
      return result
    } catch (err) {
      if (mine === generation) error.value = toApiError(err)
      return undefined
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  if (options.immediate !== false) void run()
  return { data, loading, error, run }
}
