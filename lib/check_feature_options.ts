import { checkIncludeMap } from "./load_includes.ts";
import type { StreamOptions } from "./options.ts";
import { resolveKeysetOptions } from "./sources/postgres_keyset.ts";

/**
 * Checks, at call time, the stream options that belong to features above the engine (`include`,
 * keyset pages); `resolveStreamOptions` checks the engine's own. Kept apart so the options module
 * imports no feature.
 *
 * @param options The stream options.
 * @throws {TypeError | RangeError} On a bad include map or keyset option.
 */
export function checkFeatureOptions(options: StreamOptions | undefined): void {
  if (options === undefined) return;
  if (options.include !== undefined) checkIncludeMap(options.include);
  resolveKeysetOptions(options);
}
