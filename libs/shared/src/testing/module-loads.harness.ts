/**
 * How many times `run` loads `moduleName`, in a module registry of its own: the module is observed through
 * jest.doMock with the real module behind it, so the code under test gets what it would without the observer.
 * For checks that a dependency is loaded only when it is chosen (an unused one is live heap in every process).
 * `run` requires the code under test itself (inside the fresh registry) and calls what loads, or does not load, it.
 */
export function moduleLoads(moduleName: string, run: () => void): number {
  let loads = 0;
  jest.isolateModules(() => {
    jest.doMock(moduleName, () => {
      loads += 1;
      return jest.requireActual(moduleName);
    });
    run();
  });
  return loads;
}
