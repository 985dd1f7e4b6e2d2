import { checkOptionNames } from "./check_option_names.ts";
import { checkIncludeMap } from "./load_includes.ts";
import { STREAM_OPTION_NAMES } from "./options.ts";
import type { StreamOptions } from "./options.ts";
import { resolveKeysetOptions } from "./sources/postgres_keyset.ts";

/**
 * Checks, at call time, that every option name is known, and the stream options that belong to
 * features above the engine (`include`, keyset pages); `resolveStreamOptions` checks the engine's
 * own values. Kept apart so the options module imports no feature.
 *
 * @param options The stream options.
 * @param what The public function's name, for messages.
 * @param extra Option names the function takes besides the stream options.
 * @throws {TypeError | RangeError} On an unknown option name, a bad include map or keyset option.
 */
export function checkFeatureOptions(
  options: StreamOptions | undefined,
  what: string,
  extra: readonly string[] = [],
): void {
  if (options === undefined) return;
  checkOptionNames(
    options,
    extra.length ? [...STREAM_OPTION_NAMES, ...extra] : STREAM_OPTION_NAMES,
    what,
  );
  if (options.include !== undefined) checkIncludeMap(options.include);
  resolveKeysetOptions(options);
}
