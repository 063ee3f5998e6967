/**
 * A function compiled from source (`new Function`) for the contract paths that generate one per class
 * (compiled-validator.parser.ts, json-to-instance.parser.ts). `source` is the body of a function returning the
 * generated function; every value it refers to is passed in as a parameter named by `name(value)` (the same value,
 * the same name), so what reaches the source is only what `source` writes itself. `named` gives some values a name of
 * their own, for a source that reads better with them.
 */
export function generateFunction<F>(source: (name: (value: unknown) => string) => string, named: readonly (readonly [unknown, string])[] = []): F {
  const passedIn = new Map<unknown, string>(named);
  const name = (value: unknown): string => {
    let parameter = passedIn.get(value);
    if (parameter === undefined) passedIn.set(value, (parameter = `$${passedIn.size}`));
    return parameter;
  };
  const body = `'use strict';\n${source(name)}`;
  const factory = new Function(...passedIn.values(), body) as (...values: unknown[]) => F;
  return factory(...passedIn.keys());
}
