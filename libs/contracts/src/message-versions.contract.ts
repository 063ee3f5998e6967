import type { ClassConstructor } from 'class-transformer';

/**
 * One message type's versions on a topic: the current one (produced, folded and handed to consumers) and the
 * older ones still accepted, each with its own class and an upcaster to the next version. Reading version n
 * validates it with its class, then upcasts n → n+1 → … → current, so a consumer only ever sees the current
 * payload, whichever version was sent or stored. Upcasters are pure functions of the older payload with
 * documented defaults for what it lacked.
 */
export interface MessageVersions<TCurrent extends object> {
  readonly version: number;
  readonly cls: ClassConstructor<TCurrent>;
  readonly older: readonly OlderVersion[];
}

export interface OlderVersion {
  readonly version: number;
  readonly cls: ClassConstructor<object>;
  /** To version + 1. */
  readonly upcast: (data: object) => object;
}

/** An older version with its upcaster, typed where it is declared (the chain itself is checked at load). */
export function olderVersion<TOld extends object, TNext extends object>(
  version: number,
  cls: ClassConstructor<TOld>,
  upcast: (data: TOld) => TNext,
): OlderVersion {
  // Only ever called with a payload `cls` validated (see upcastToCurrent), hence the one narrowing here.
  return { version, cls, upcast: (data: object) => upcast(data as TOld) };
}

/** The current version of a message type, with the older versions it upcasts from (oldest first, contiguous). */
export function versions<TCurrent extends object>(version: number, cls: ClassConstructor<TCurrent>, older: readonly OlderVersion[] = []): MessageVersions<TCurrent> {
  older.forEach((entry, index) => {
    const next = older[index + 1]?.version ?? version;
    if (entry.version + 1 !== next) throw new Error(`message versions must be contiguous: v${entry.version} upcasts to v${entry.version + 1}, found v${next}`);
  });
  return { version, cls, older };
}

/** The class that validates `version`, or undefined for a version this reader does not know. */
export function classOf(message: MessageVersions<object>, version: number): ClassConstructor<object> | undefined {
  if (version === message.version) return message.cls;
  return message.older.find((entry) => entry.version === version)?.cls;
}

/**
 * Upcasts a payload of `version` to the current version (the identity for the current one). Throws for an
 * unknown version: a store or topic holding a version this code cannot read is a deployment error, not data.
 */
export function upcastToCurrent(message: MessageVersions<object>, version: number, data: object): object {
  if (version === message.version) return data;
  const start = message.older.findIndex((entry) => entry.version === version);
  if (start < 0) throw new Error(`no upcaster from v${version} (current v${message.version})`);
  return message.older.slice(start).reduce((payload, entry) => entry.upcast(payload), data);
}

/** The current payload type of a message's versions. */
export type CurrentOf<T> = T extends MessageVersions<infer TData> ? TData : never;
