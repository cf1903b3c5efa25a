// Event objects for the Kubernetes API server fixture: core/v1 Event as stored and served,
// conversion to and from events.k8s.io/v1 (the real server keeps one storage for both and
// converts, pkg/apis/events/v1/conversion.go), the create validation of
// pkg/apis/core/validation/events.go, and the time normalisation the server's Go types apply
// (metav1.Time → RFC 3339 seconds, metav1.MicroTime → six fractional digits).

import type { FieldError } from './kube-status.js';

export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

export interface EventMeta {
  name: string;
  namespace: string;
  generateName?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** core/v1 Event as the fixture stores it and `GET /api/v1/…/events` returns it. */
export interface CoreEvent {
  apiVersion?: 'v1';
  kind?: 'Event';
  metadata: EventMeta;
  involvedObject: ObjectReference;
  reason?: string;
  message?: string;
  source: { component?: string; host?: string };
  firstTimestamp: string | null;
  lastTimestamp: string | null;
  count?: number;
  type?: string;
  eventTime: string | null;
  series?: { count?: number; lastObservedTime?: string };
  action?: string;
  related?: ObjectReference;
  reportingComponent: string;
  reportingInstance: string;
  [key: string]: unknown;
}

export type Parsed<T> =
  | { readonly kind: 'ok'; readonly value: T }
  | { readonly kind: 'error'; readonly message: string };

const TIME_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** metav1.Time: RFC 3339, UTC, whole seconds (fractions are dropped, as Go's Format does). */
export function formatTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function normalizeTimeValue(value: unknown, micro: boolean): Parsed<string | null> {
  if (value === null || value === undefined || value === '') return { kind: 'ok', value: null };
  if (typeof value !== 'string')
    return { kind: 'error', message: `parsing time ${JSON.stringify(value)}: not a string` };
  const m = TIME_RE.exec(value);
  const ms = Date.parse(value);
  if (m === null || Number.isNaN(ms)) {
    return {
      kind: 'error',
      message: `parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05Z07:00": cannot parse`,
    };
  }
  const seconds = formatTime(new Date(ms - (((ms % 1000) + 1000) % 1000)));
  if (!micro) return { kind: 'ok', value: seconds };
  const fraction = `${(m[2] ?? '.').slice(1)}000000`.slice(0, 6);
  return { kind: 'ok', value: seconds.replace(/Z$/, `.${fraction}Z`) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Normalises a decoded core/v1 Event body to the stored shape: Time/MicroTime fields re-encoded,
 * non-omitempty fields present (`firstTimestamp: null`, `source: {}`, `reportingComponent: ""`),
 * as the real server's JSON encoding of the Go struct has them. Errors are decode errors (400).
 */
export function normalizeCoreEvent(
  body: Record<string, unknown>,
): Parsed<Omit<CoreEvent, 'metadata'> & { metadata: Record<string, unknown> }> {
  const out: Record<string, unknown> = { ...body };
  for (const [field, micro] of [
    ['firstTimestamp', false],
    ['lastTimestamp', false],
    ['eventTime', true],
  ] as const) {
    const t = normalizeTimeValue(out[field], micro);
    if (t.kind === 'error') return t;
    out[field] = t.value;
  }
  if (isRecord(out['series'])) {
    const series = { ...out['series'] };
    const t = normalizeTimeValue(series['lastObservedTime'], true);
    if (t.kind === 'error') return t;
    if (t.value === null) delete series['lastObservedTime'];
    else series['lastObservedTime'] = t.value;
    out['series'] = series;
  }
  if (out['count'] !== undefined && (typeof out['count'] !== 'number' || !Number.isInteger(out['count']))) {
    return {
      kind: 'error',
      message: `json: cannot unmarshal ${typeof out['count']} into Go struct field Event.count of type int32`,
    };
  }
  out['involvedObject'] = isRecord(out['involvedObject']) ? out['involvedObject'] : {};
  out['source'] = isRecord(out['source']) ? out['source'] : {};
  out['reportingComponent'] = typeof out['reportingComponent'] === 'string' ? out['reportingComponent'] : '';
  out['reportingInstance'] = typeof out['reportingInstance'] === 'string' ? out['reportingInstance'] : '';
  out['metadata'] = isRecord(out['metadata']) ? { ...out['metadata'] } : {};
  return { kind: 'ok', value: out as Omit<CoreEvent, 'metadata'> & { metadata: Record<string, unknown> } };
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * ValidateEventCreate for the API version the request came in on. core/v1 gets the lenient
 * legacy checks (namespace agreement, and for events with eventTime the reporting fields);
 * events.k8s.io/v1 additionally gets the strict ones.
 */
export function validateEventCreate(ev: CoreEvent, apiGroupVersion: 'v1' | 'events.k8s.io/v1'): FieldError[] {
  const errs: FieldError[] = [];
  const ns = ev.metadata.namespace;
  const involvedNs = ev.involvedObject.namespace ?? '';
  const controllerField = apiGroupVersion === 'v1' ? 'reportingComponent' : 'reportingController';
  if (ev.eventTime === null) {
    if (involvedNs === '') {
      if (ns !== '' && ns !== 'default') {
        errs.push({
          type: 'FieldValueInvalid',
          field: 'involvedObject.namespace',
          value: involvedNs,
          detail: 'does not match event.namespace',
        });
      }
    } else if (ns !== involvedNs) {
      errs.push({
        type: 'FieldValueInvalid',
        field: 'involvedObject.namespace',
        value: involvedNs,
        detail: 'does not match event.namespace',
      });
    }
  } else {
    if (involvedNs === '' && ns !== 'default' && ns !== 'kube-system') {
      errs.push({
        type: 'FieldValueInvalid',
        field: 'involvedObject.namespace',
        value: involvedNs,
        detail: 'does not match event.namespace',
      });
    }
    if (ev.reportingComponent === '') errs.push({ type: 'FieldValueRequired', field: controllerField, detail: '' });
    if (ev.reportingInstance === '') errs.push({ type: 'FieldValueRequired', field: 'reportingInstance', detail: '' });
    if (ev.reportingInstance.length > 128) {
      errs.push({
        type: 'FieldValueInvalid',
        field: 'reportingInstance',
        value: '',
        detail: 'can have at most 128 characters',
      });
    }
    if ((ev.action ?? '').length > 128)
      errs.push({ type: 'FieldValueInvalid', field: 'action', value: '', detail: 'can have at most 128 characters' });
    if ((ev.reason ?? '') === '') errs.push({ type: 'FieldValueRequired', field: 'reason', detail: '' });
    if ((ev.reason ?? '').length > 128)
      errs.push({ type: 'FieldValueInvalid', field: 'reason', value: '', detail: 'can have at most 128 characters' });
    if ((ev.message ?? '').length > 1024)
      errs.push({ type: 'FieldValueInvalid', field: 'message', value: '', detail: 'can have at most 1024 characters' });
  }
  if (!DNS1123_SUBDOMAIN.test(ns)) {
    errs.push({
      type: 'FieldValueInvalid',
      field: 'namespace',
      value: ns,
      detail: 'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters',
    });
  }
  if (apiGroupVersion === 'events.k8s.io/v1') {
    if (ev.eventTime === null) errs.push({ type: 'FieldValueRequired', field: 'eventTime', detail: '' });
    if (ev.type !== 'Normal' && ev.type !== 'Warning') {
      errs.push({ type: 'FieldValueInvalid', field: 'type', value: '', detail: `has invalid value: ${ev.type ?? ''}` });
    }
    if (ev.firstTimestamp !== null)
      errs.push({
        type: 'FieldValueInvalid',
        field: 'deprecatedFirstTimestamp',
        value: '',
        detail: 'needs to be unset',
      });
    if (ev.lastTimestamp !== null)
      errs.push({
        type: 'FieldValueInvalid',
        field: 'deprecatedLastTimestamp',
        value: '',
        detail: 'needs to be unset',
      });
    if (ev.count !== undefined && ev.count !== 0)
      errs.push({ type: 'FieldValueInvalid', field: 'deprecatedCount', value: '', detail: 'needs to be unset' });
    if (ev.source.component !== undefined || ev.source.host !== undefined) {
      errs.push({ type: 'FieldValueInvalid', field: 'deprecatedSource', value: '', detail: 'needs to be unset' });
    }
    if ((ev.action ?? '') === '') errs.push({ type: 'FieldValueRequired', field: 'action', detail: '' });
    if (ev.eventTime === null) {
      // With eventTime set the legacy checks above already required these.
      if (ev.reportingComponent === '')
        errs.push({ type: 'FieldValueRequired', field: 'reportingController', detail: '' });
      if (ev.reportingInstance === '')
        errs.push({ type: 'FieldValueRequired', field: 'reportingInstance', detail: '' });
      if ((ev.reason ?? '') === '') errs.push({ type: 'FieldValueRequired', field: 'reason', detail: '' });
    }
    if (ev.series !== undefined && (ev.series.count ?? 0) < 2) {
      errs.push({ type: 'FieldValueInvalid', field: 'series.count', value: '', detail: 'should be at least 2' });
    }
  }
  return errs;
}

/** Renames between events.k8s.io/v1 and core/v1 (the rest of the fields share names). */
const V1_TO_CORE: ReadonlyArray<readonly [string, string]> = [
  ['regarding', 'involvedObject'],
  ['note', 'message'],
  ['reportingController', 'reportingComponent'],
  ['deprecatedSource', 'source'],
  ['deprecatedFirstTimestamp', 'firstTimestamp'],
  ['deprecatedLastTimestamp', 'lastTimestamp'],
  ['deprecatedCount', 'count'],
];

export function fromEventsV1(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body };
  for (const [v1, core] of V1_TO_CORE) {
    delete out[v1];
    if (body[v1] !== undefined) out[core] = body[v1];
  }
  delete out['apiVersion'];
  delete out['kind'];
  return out;
}

/** events.k8s.io/v1 view of a stored event, as `GET /apis/events.k8s.io/v1/…` returns it. */
export function toEventsV1(ev: CoreEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { ...ev };
  for (const [v1, core] of V1_TO_CORE) {
    delete out[core];
    const value = (ev as Record<string, unknown>)[core];
    if (
      value !== undefined &&
      value !== '' &&
      !(core === 'source' && isRecord(value) && Object.keys(value).length === 0)
    ) {
      out[v1] = value;
    }
  }
  out['deprecatedFirstTimestamp'] = ev.firstTimestamp;
  out['deprecatedLastTimestamp'] = ev.lastTimestamp;
  out['reportingController'] = ev.reportingComponent;
  out['reportingInstance'] = ev.reportingInstance;
  return out;
}

/** Field selectors core/v1 events accept (pkg/registry/core/event/strategy.go ToSelectableFields). */
export const CORE_EVENT_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'involvedObject.kind',
  'involvedObject.namespace',
  'involvedObject.name',
  'involvedObject.uid',
  'involvedObject.apiVersion',
  'involvedObject.resourceVersion',
  'involvedObject.fieldPath',
  'reason',
  'reportingComponent',
  'source',
  'type',
] as const;

/** The same selectors under their events.k8s.io/v1 names. */
export const EVENTS_V1_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'regarding.kind',
  'regarding.namespace',
  'regarding.name',
  'regarding.uid',
  'regarding.apiVersion',
  'regarding.resourceVersion',
  'regarding.fieldPath',
  'reason',
  'reportingController',
  'type',
] as const;

/** Reads a selectable field of a stored event by its core/v1 or events.k8s.io/v1 name. */
export function eventFieldValue(obj: unknown, field: string): string {
  const ev = obj as CoreEvent;
  const path = field.replace(/^regarding\./, 'involvedObject.').replace(/^reportingController$/, 'reportingComponent');
  if (path === 'source') return ev.source.component ?? '';
  let cur: unknown = ev;
  for (const seg of path.split('.')) cur = isRecord(cur) ? cur[seg] : undefined;
  return cur === undefined || cur === null ? '' : String(cur);
}
