// The HTTP API the console uses, with the tab's key. The key lives in sessionStorage: it is
// gone when the tab closes and is never written anywhere else.

const keyName = 'herald.key';

export function storedKey() {
  return sessionStorage.getItem(keyName);
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(keyName, key);
  else sessionStorage.removeItem(keyName);
}

/** An error answer: its HTTP status and the API's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API; resolves to the decoded JSON answer (null for 204). */
export async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401 && key) {
    // The key was revoked (or the server's keys changed): the page asks for a key again.
    window.dispatchEvent(new CustomEvent('herald-unauthorized'));
  }
  if (!response.ok) throw new ApiError(response.status, data?.error ?? `http${response.status}`, data?.message ?? text);
  return data;
}

/** The path segment of a name (names are checked by the server; this only encodes). */
const segment = encodeURIComponent;

/** The management path of a queue, topic or subscription (wire form `{queue}`, `{topic, subscription}`). */
export function managementPath(entity) {
  if (entity.queue) return `/v1/queues/${segment(entity.queue)}`;
  if (entity.subscription) return `/v1/topics/${segment(entity.topic)}/subscriptions/${segment(entity.subscription)}`;
  return `/v1/topics/${segment(entity.topic)}`;
}

/** The entity without its dead-letter flag. */
export function plain(entity) {
  const { deadLetter, ...rest } = entity;
  return rest;
}

/** The dead-letter queue of a queue or subscription. */
export function deadLetterQueue(entity) {
  return { ...plain(entity), deadLetter: true };
}

export const api = {
  whoAmI: () => call('GET', '/v1/whoami'),
  stats: () => call('GET', '/v1/stats'),
  entity: (entity) => call('GET', managementPath(entity)),
  subscriptions: (topic) => call('GET', `/v1/topics/${segment(topic)}/subscriptions`),
  updateOptions: (entity, options) => call('PATCH', managementPath(entity), options),
  counts: (entity) => call('POST', '/v1/messages/counts', { entity }),
  peek: (entity, fromSequenceNumber, maxCount) => call('POST', '/v1/messages/peek', { entity, fromSequenceNumber, maxCount }),
  message: (entity, sequenceNumber) => call('POST', '/v1/messages/get', { entity, sequenceNumber }),
  purge: (entity) => call('POST', '/v1/messages/purge', { entity }),
  cancelScheduled: (entity, sequenceNumbers) => call('POST', '/v1/messages/cancel-scheduled', { entity, sequenceNumbers }),
  sessions: (entity, after, maxCount) => call('POST', '/v1/sessions/list', after ? { entity, after, maxCount } : { entity, maxCount }),
  deadLetterSummary: (entity, filter) => call('POST', '/v1/dead-letters/summary', filter ? { entity, filter } : { entity }),
  searchDeadLetters: (entity, filter, fromSequenceNumber, maxCount) => {
    const body = { entity, fromSequenceNumber, maxCount };
    if (filter) body.filter = filter;
    return call('POST', '/v1/dead-letters/search', body);
  },
  startBulkJob: (request) => call('POST', '/v1/dead-letters/jobs', request),
  bulkJobs: () => call('GET', '/v1/dead-letters/jobs'),
  bulkJob: (id) => call('GET', `/v1/dead-letters/jobs/${segment(id)}`),
  cancelBulkJob: (id) => call('DELETE', `/v1/dead-letters/jobs/${segment(id)}`),
};

/** Who is signed in: the answer of `GET /v1/whoami`, or null. */
export const session = { who: null };

/** Whether the signed-in key holds `right` (`manage` implies `send` and `listen`). */
export function can(right) {
  const rights = session.who?.rights ?? [];
  return rights.includes(right) || rights.includes('manage');
}

/** Whether the key may list the namespace (manage, without an entity scope). */
export function canListNamespace() {
  return can('manage') && !session.who?.scope;
}

/** The kind of an entity's wire form: queue, topic or subscription. */
export function kindOf(entity) {
  if (entity.queue) return 'queue';
  return entity.subscription ? 'subscription' : 'topic';
}

/** An entity's name for people: `orders`, `events`, `events/subscriptions/audit`. */
export function entityLabel(entity) {
  if (entity.queue) return entity.queue;
  return entity.subscription ? `${entity.topic}/subscriptions/${entity.subscription}` : entity.topic;
}

/** The console's address of an entity's page (`page` is `entity` or `dead-letters`). */
export function entityHash(entity, page = 'entity') {
  const parts = entity.queue ? ['queue', entity.queue] : entity.subscription ? ['subscription', entity.topic, entity.subscription] : ['topic', entity.topic];
  return `#/${page}/${parts.map(encodeURIComponent).join('/')}`;
}

/** The entity an address names (the inverse of `entityHash`), or null. */
export function entityFromParts(parts) {
  const [kind, first, second] = parts.map(decodeURIComponent);
  if (kind === 'queue' && first) return { queue: first };
  if (kind === 'topic' && first) return { topic: first };
  if (kind === 'subscription' && first && second) return { topic: first, subscription: second };
  return null;
}
