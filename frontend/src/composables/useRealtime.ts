import { onBeforeUnmount } from 'vue'
import {
  useRealtimeStore,
  type RealtimeEventType,
  type RealtimeHandler,
  type SubscribeFilter,
} from '@/stores/realtime'

/** Subscribe a component to a realtime event type; unsubscribed automatically when it unmounts. */
export function useRealtimeEvent<K extends RealtimeEventType>(
  type: K | '*',
  handler: RealtimeHandler<K>,
  filter: SubscribeFilter = {},
): () => void {
  const off = useRealtimeStore().subscribe(type, handler, filter)
  onBeforeUnmount(off)
  return off
}
