import { SemVer } from 'semver';

/**
 * Semantic versions as the updater reads them: npm's `semver` (strict semver.org 2.0.0; a leading
 * `v` and surrounding spaces accepted), behind the three questions the updater asks. Bundled with
 * the worker, so an update never changes the parser that judged it.
 */
export interface Version {
  /** Dot-separated prerelease identifiers; empty for a release. */
  prerelease: readonly (string | number)[];
  /** `1.2.3-rc.1` (no leading `v`, no build metadata). */
  text: string;
  readonly semver: SemVer;
}

/**
 * A version, or null when `text` is not a semantic version. Numbers above 2^53 - 1 are refused
 * (semver's limit; no release is numbered like that).
 */
export function parseVersion(text: string): Version | null {
  let semver: SemVer;
  try {
    semver = new SemVer(text, { loose: false });
  } catch {
    return null;
  }
  return { prerelease: semver.prerelease, text: semver.version, semver };
}

export function isPrerelease(version: Version): boolean {
  return version.prerelease.length > 0;
}

/** Negative when a < b, zero when they have the same precedence (build metadata is ignored), positive when a > b. */
export function compareVersions(a: Version, b: Version): number {
  return a.semver.compare(b.semver);
}

/** compareVersions for strings; throws on text that is not a version (a programming error here). */
export function compareVersionText(a: string, b: string): number {
  const left = parseVersion(a);
  const right = parseVersion(b);
  if (!left || !right) throw new Error(`not a semantic version: ${left ? b : a}`);
  return compareVersions(left, right);
}
