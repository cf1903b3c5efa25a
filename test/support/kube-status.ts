// metav1.Status bodies as the Kubernetes API server writes them (k8s.io/apimachinery
// pkg/api/errors). Field names, reasons and the messages quoted below follow the real server;
// the fixture uses these builders for every failure it returns or streams.

export interface StatusCause {
  readonly reason?: string;
  readonly message?: string;
  readonly field?: string;
}

export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
  readonly uid?: string;
  readonly causes?: readonly StatusCause[];
  readonly retryAfterSeconds?: number;
}

export interface KubeStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure';
  readonly message: string;
  readonly reason: string;
  readonly details?: StatusDetails;
  readonly code: number;
}

/** A failure the fixture answers with: the handler sends `status` as the body, `status.code` as the HTTP code. */
export class HttpFailure extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
}

export function badRequest(message: string): HttpFailure {
  return new HttpFailure(kubeStatus(400, message, 'BadRequest'));
}

/** metav1.StatusReason for each HTTP code the fixture produces (pkg/api/errors). */
export const STATUS_REASON_BY_CODE: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  409: 'Conflict',
  410: 'Expired',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function kubeStatus(
  code: number,
  message: string,
  reason: string = STATUS_REASON_BY_CODE[code] ?? 'Unknown',
  details?: StatusDetails,
): KubeStatus {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  };
}

/** The status an injected failure (failNext) answers with, worded like the real server's. */
export function injectedStatus(code: number): KubeStatus {
  switch (code) {
    case 401:
      return kubeStatus(401, 'Unauthorized');
    case 429:
      return kubeStatus(429, 'Too many requests, please try again later.', 'TooManyRequests', {
        retryAfterSeconds: 1,
      });
    case 500:
      return kubeStatus(500, 'Internal error occurred: injected by the test fixture', 'InternalError', {
        causes: [{ message: 'injected by the test fixture' }],
      });
    case 503:
      return kubeStatus(503, 'the server is currently unable to handle the request', 'ServiceUnavailable');
    case 504:
      return kubeStatus(504, 'Timeout: request did not complete within the allowed duration', 'Timeout');
    default:
      return kubeStatus(code, `injected failure ${code}`);
  }
}

/** errors.NewNotFound: `baremetalhosts.metal3.io "name" not found`, `events "name" not found`. */
export function notFoundStatus(resource: string, group: string, name: string): KubeStatus {
  const qualified = group === '' ? resource : `${resource}.${group}`;
  return kubeStatus(404, `${qualified} "${name}" not found`, 'NotFound', {
    name,
    ...(group === '' ? {} : { group }),
    kind: resource,
  });
}

/** The reply to an unknown path or a resource the fixture does not serve. */
export function unknownResourceStatus(): KubeStatus {
  return kubeStatus(404, 'the server could not find the requested resource', 'NotFound', {});
}

export function alreadyExistsStatus(resource: string, group: string, name: string): KubeStatus {
  const qualified = group === '' ? resource : `${resource}.${group}`;
  return kubeStatus(409, `${qualified} "${name}" already exists`, 'AlreadyExists', {
    name,
    ...(group === '' ? {} : { group }),
    kind: resource,
  });
}

/**
 * errors.NewConflict(qualifiedResource, name, cause). `resource` is what the caller passed: the
 * plural for the registry's checks, but the Kind for rest.BeforeDelete's precondition checks
 * (`Operation cannot be fulfilled on Secret "x": the ResourceVersion in the precondition …`).
 */
export function conflictWithCause(resource: string, group: string, name: string, cause: string): KubeStatus {
  const qualified = group === '' ? resource : `${resource}.${group}`;
  return kubeStatus(409, `Operation cannot be fulfilled on ${qualified} "${name}": ${cause}`, 'Conflict', {
    name,
    ...(group === '' ? {} : { group }),
    kind: resource,
  });
}

/** registry.OptimisticLockErrorMsg: an update whose metadata.resourceVersion is not the stored one. */
export function conflictStatus(resource: string, group: string, name: string): KubeStatus {
  return conflictWithCause(
    resource,
    group,
    name,
    'the object has been modified; please apply your changes to the latest version and try again',
  );
}

/**
 * The success Status a DELETE answers with for kinds whose registry does not return the deleted
 * object (Secrets, ConfigMaps, Leases: `registry.Store.finalizeDelete`); details.kind is the plural.
 */
export interface SuccessStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Success';
  readonly details: StatusDetails;
}

export function deletedStatus(resource: string, group: string, name: string, uid: string): SuccessStatus {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: { name, ...(group === '' ? {} : { group }), kind: resource, uid },
  };
}

export interface FieldError {
  /** field.ErrorType reason: FieldValueRequired, FieldValueInvalid, FieldValueForbidden, … */
  readonly type:
    | 'FieldValueRequired'
    | 'FieldValueInvalid'
    | 'FieldValueForbidden'
    | 'FieldValueNotSupported'
    | 'FieldValueTooLong';
  readonly field: string;
  /** The detail text, e.g. "does not match event.namespace". */
  readonly detail: string;
  /** The offending value (quoted in the message for Invalid / NotSupported). */
  readonly value?: unknown;
  /** The value as Go's %#v prints it when JSON is not how it looks (a uint64 0 is `0x0`). */
  readonly printedValue?: string;
}

function printed(err: FieldError): string {
  return err.printedValue ?? JSON.stringify(err.value ?? '');
}

function fieldErrorText(err: FieldError): string {
  const detail = err.detail === '' ? '' : `: ${err.detail}`;
  switch (err.type) {
    case 'FieldValueRequired':
      return `Required value${detail}`;
    case 'FieldValueForbidden':
      return `Forbidden: ${err.detail}`;
    case 'FieldValueTooLong':
      // field.TooLong never prints the value.
      return `Too long${detail}`;
    case 'FieldValueNotSupported':
      return `Unsupported value: ${printed(err)}${detail}`;
    case 'FieldValueInvalid':
      return `Invalid value: ${printed(err)}${detail}`;
  }
}

/**
 * errors.NewInvalid: 422 with one cause per field error, e.g.
 * `Event "x" is invalid: involvedObject.namespace: Invalid value: "a": does not match event.namespace`.
 */
export function invalidStatus(kind: string, group: string, name: string, errors: readonly FieldError[]): KubeStatus {
  const qualifiedKind = group === '' ? kind : `${kind}.${group}`;
  // ErrorList.ToAggregate drops repeated messages (two bad labels with one reason print once).
  const texts = [...new Set(errors.map((e) => `${e.field}: ${fieldErrorText(e)}`))];
  const joined = texts.length === 1 ? texts[0] : `[${texts.join(', ')}]`;
  return kubeStatus(422, `${qualifiedKind} "${name}" is invalid: ${joined}`, 'Invalid', {
    name,
    ...(group === '' ? {} : { group }),
    kind,
    causes: errors.map((e) => ({ reason: e.type, message: fieldErrorText(e), field: e.field })),
  });
}

/** The 410 the watch cache streams for a watch older than its window (cacher/watch_cache.go). */
export function tooOldResourceVersionStatus(requested: number, oldestValid: number): KubeStatus {
  return kubeStatus(410, `too old resource version: ${requested} (${oldestValid})`, 'Expired');
}

/** storage.NewTooLargeResourceVersionError as the handler reports it. */
export function tooLargeResourceVersionStatus(requested: number, current: number): KubeStatus {
  return kubeStatus(504, `Timeout: Too large resource version: ${requested}, current: ${current}`, 'Timeout', {
    causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
    retryAfterSeconds: 1,
  });
}
