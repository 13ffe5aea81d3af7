/**
 * The configuration's shape, written once. The convict schema (`schema.ts`) is the one
 * description of the file: `RawConfig` is derived from it, and this module holds the
 * hand-written typed view (`Config`, `types.ts`) to it at compile time, so a key added
 * to one and not the other fails `tsc` with a message naming the key:
 *
 *   schema.ts  SCHEMA ──(type)──> RawConfig ──(ConfigShapeProblems)──> Config <── toConfig (load.ts)
 *                 └── convict, schemaItems(): the loader, check-config, the docs test
 *
 * The file spells keys in snake_case (`advert.interval_ms`), `Config` in camelCase
 * (`advert.intervalMs`); `CamelCase` and `camelize` are that renaming at type level and
 * at run time. Where `Config` departs from the file (a secret read from a file, `""`
 * turned into `null`, an address split from its prefix), the departure is declared in
 * a table next to `Config`, so it is deliberate and visible.
 */

/** `preempt_delay_ms` → `preemptDelayMs`, at type level. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/** An object's keys renamed to camelCase, values unchanged. */
export type Camelized<T> = { [K in keyof T & string as CamelCase<K>]: T[K] };

/** `preempt_delay_ms` → `preemptDelayMs`, at run time (the twin of {@link CamelCase}). */
export function camelCase<S extends string>(name: S): CamelCase<S> {
  return name.replace(/_(.)/g, (_match, next: string) => next.toUpperCase()) as CamelCase<S>;
}

/** A section of the file with its keys renamed to camelCase: the typed view where nothing else changes. */
export function camelize<T extends object>(section: T): Camelized<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(section)) out[camelCase(key)] = value;
  return out as Camelized<T>;
}

/** `true` when A and B are mutually assignable (`readonly` aside). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** The departures of one section: file keys carried differently, typed keys no file key carries. */
export interface Departures {
  /** File keys whose camelCase twin is absent from the typed view or of another type. */
  readonly converted?: string;
  /** Typed keys that no file key of the section carries under its own name. */
  readonly added?: string;
}

type Converted<D, S> = S extends keyof D ? (D[S] extends { converted: infer C extends string } ? C : never) : never;
type Added<D, S> = S extends keyof D ? (D[S] extends { added: infer A extends string } ? A : never) : never;

/**
 * Problems of one section `S` of the file against its typed twin `T`. A subsection
 * (`quorum.etcd`: a value of the file's section that is itself a mapping) is held to its
 * typed twin the same way, its departures declared under its dotted path.
 */
type SectionProblems<S extends string, R, T, D> =
  | {
      [K in Exclude<keyof R & string, Converted<D, S>>]: CamelCase<K> extends keyof T
        ? R[K] extends object
          ? SectionProblems<`${S}.${K}`, R[K], T[CamelCase<K> & keyof T], D>
          : Same<R[K], T[CamelCase<K> & keyof T]> extends true
            ? never
            : `${S}.${K}: the schema and Config.${CamelPath<S>}.${CamelCase<K>} hold different types (declare it converted if that is meant)`
        : `${S}.${K}: in the schema but not in Config.${CamelPath<S>} (as ${CamelCase<K>}; or declare it converted)`;
    }[Exclude<keyof R & string, Converted<D, S>>]
  | {
      [C in keyof T & string]: C extends CamelCase<keyof R & string> | Added<D, S>
        ? never
        : `${CamelPath<S>}.${C}: in Config but no key of the schema's ${S} section carries it (or declare it added)`;
    }[keyof T & string]
  | {
      [C in Converted<D, S>]: C extends keyof R ? never : `${S}.${C}: declared converted, but the schema has no such key`;
    }[Converted<D, S>]
  | {
      [A in Added<D, S>]: A extends keyof T ? never : `${CamelPath<S>}.${A}: declared added, but Config has no such key`;
    }[Added<D, S>];

/** `peer_redis.some_part` → `peerRedis.somePart`. */
type CamelPath<P extends string> = P extends `${infer Head}.${infer Tail}` ? `${CamelCase<Head>}.${CamelPath<Tail>}` : CamelCase<P>;

/** The dotted paths of a file's sections and their subsections (`quorum`, `quorum.etcd`). */
type SectionPaths<R> = {
  [S in keyof R & string]: S | { [K in keyof R[S] & string]: R[S][K] extends object ? `${S}.${K}` : never }[keyof R[S] & string];
}[keyof R & string];

/**
 * Every difference between the file's shape `Raw` (sections of snake_case keys) and the
 * typed view `Typed` (the same sections and keys in camelCase, plus `Extra` top-level
 * keys of its own) that the `Departures` table `D` does not declare, as readable
 * strings; `never` when they agree. Sections and keys must match one to one, with the
 * same value types, except for declared departures.
 */
export type ShapeProblems<Raw, Typed, D, Extra extends string = never> =
  | {
      [S in keyof Raw & string]: CamelCase<S> extends keyof Typed
        ? SectionProblems<S, Raw[S], Typed[CamelCase<S>], D>
        : `${S}: a section of the schema that Config lacks (as ${CamelCase<S>})`;
    }[keyof Raw & string]
  | {
      [C in Exclude<keyof Typed & string, Extra>]: C extends CamelCase<keyof Raw & string>
        ? never
        : `${C}: a section of Config that the schema lacks`;
    }[Exclude<keyof Typed & string, Extra>]
  | {
      [S in keyof D & string]: S extends SectionPaths<Raw> ? never : `${S}: departures declared for a section the schema lacks`;
    }[keyof D & string];

/** Compiles only when `P` is `never`; otherwise tsc names each problem. */
export type Agrees<P extends never> = P;
