"""Instrumentation plans: which functions to rewrite, at which level, sampled how often.

A plan is a default level plus rules; each rule is an fnmatch glob over
``module`` or ``module.qualname`` with a level and a sampling rate::

    default_level = "none"              # for functions no rule matches

    [[rules]]
    pattern = "myapp.*"
    level = "boundaries"                # none | boundaries | args | full
    sampling = 1.0                      # 0 < sampling <= 1, per root call

The same shape is accepted as JSON (an object, or just the list of rules) or
as a dict; a short dict ``{"myapp.*": "args"}`` maps patterns to levels.

Precedence: when several rules match a function, the **most specific** wins:
the pattern with the most literal (non-wildcard) characters; among equally
specific ones, the later rule. So ``myapp.*`` at ``boundaries`` and
``myapp.tasks.*`` at ``args`` give ``args`` to ``myapp.tasks.run`` whatever
their order. Patterns are case-sensitive (module names are).

A malformed plan raises :class:`PlanError` naming the key, the value and what
was expected: ``rules[2].level: expected one of none, boundaries, args, full,
got 'al'``. Rules that never matched anything are reported by
:meth:`Plan.unmatched_patterns` so that a CLI can warn about a typo.
"""

from __future__ import annotations

import functools
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from elixirscope.contracts.levels import LEVELS

__all__ = ["LEVELS", "Plan", "PlanError", "Rule", "instrumentable"]

_RULE_KEYS = ("pattern", "level", "sampling")
_PLAN_KEYS = ("default_level", "rules")
_WILDCARDS = "*?["


class PlanError(ValueError):
    """A plan that cannot be used: ``path`` names the bad key, ``value`` what was there.

    Raised by every :class:`Plan` constructor; fix the key the message names.
    """

    def __init__(self, path: str, expected: str, value: Any, source: str | None = None) -> None:
        self.path, self.expected, self.value, self.source = path, expected, value, source
        where = f" (in {source})" if source else ""
        super().__init__(f"{path}: expected {expected}, got {value!r}{where}")


@dataclass(frozen=True)
class Rule:
    """One pattern with its level and sampling rate."""

    pattern: str
    level: str = "boundaries"
    sampling: float = 1.0

    def as_list(self) -> list[Any]:
        """The rule as it travels in a trace snapshot: ``[pattern, level, sampling]``."""
        return [self.pattern, self.level, self.sampling]

    @property
    def specificity(self) -> int:
        return sum(1 for ch in self.pattern if ch not in _WILDCARDS)


class Plan:
    """Decides the level and sampling rate of every function, by pattern."""

    def __init__(
        self,
        rules: list[Rule] | tuple[Rule, ...] = (),
        default_level: str = "none",
        *,
        source: str | None = None,
    ) -> None:
        _check_level("default_level", default_level, source)
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.default_level = default_level
        self.source = source
        # Rules by precedence, best first: most literal characters, then latest.
        self._ordered = sorted(
            enumerate(self.rules), key=lambda item: (item[1].specificity, item[0]), reverse=True
        )
        self._matched: set[int] = set()
        self._aliases: dict[str, str] = {}

    def known_as(self, module: str, alias: str) -> Plan:
        """Let rules name ``module`` as ``alias`` too (a script runs as ``__main__``
        but its user calls it by its file's name: ``--trace 'myscript.*'``); returns self."""
        if not isinstance(alias, str) or not alias:
            raise PlanError("known_as", "a non-empty module name", alias, self.source)
        self._aliases[module] = alias
        return self

    def _names(self, module: str) -> tuple[str, ...]:
        alias = self._aliases.get(module)
        return (module,) if alias is None else (module, alias)

    # -- constructors -------------------------------------------------------

    @classmethod
    def load(cls, plan: Plan | Mapping[str, Any] | list[Any] | str | Path) -> Plan:
        """A plan from a Plan (returned as is), a dict, a list of rules, or a file path."""
        if isinstance(plan, Plan):
            return plan
        if isinstance(plan, (str, Path)):
            return cls.from_file(plan)
        return cls.from_dict(plan)

    @classmethod
    def from_file(cls, path: str | Path) -> Plan:
        """Read a ``.toml`` or ``.json`` plan file (by suffix; otherwise TOML is tried)."""
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PlanError(
                "plan file", "a readable TOML or JSON file", f"{path} ({exc.strerror or exc})"
            ) from None
        if path.suffix.lower() == ".json":
            try:
                import json

                data = json.loads(text)
            except ValueError as exc:
                raise PlanError("plan file", "valid JSON", f"{exc}", source) from None
        else:
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise PlanError("plan file", "valid TOML", f"{exc}", source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> Plan:
        """A plan from the documented shape, a bare list of rules, or ``{pattern: level}``."""
        if isinstance(data, list):
            return cls(_rules(data, source), source=source)
        if not isinstance(data, Mapping):
            raise PlanError(
                "plan",
                "a table/object with `rules`, a list of rules, or {pattern: level}",
                data,
                source,
            )
        if not any(key in data for key in _PLAN_KEYS):
            return cls(_short_rules(data, source), source=source)
        for key in data:
            if key not in _PLAN_KEYS:
                raise PlanError(
                    str(key), f"one of the keys {', '.join(_PLAN_KEYS)}", data[key], source
                )
        default_level = data.get("default_level", "none")
        _check_level("default_level", default_level, source)
        return cls(_rules(data.get("rules", []), source), default_level, source=source)

    @classmethod
    def from_patterns(
        cls, patterns: list[str] | tuple[str, ...], level: str = "boundaries", sampling: float = 1.0
    ) -> Plan:
        """One rule per pattern, all at ``level`` (what ``--trace P --level L`` means)."""
        return cls.from_dict(
            {"rules": [{"pattern": p, "level": level, "sampling": sampling} for p in patterns]}
        )

    def with_rule(self, pattern: str, level: str = "boundaries", sampling: float = 1.0) -> Plan:
        """A new plan with one more rule (last among equally specific ones, so it wins)."""
        rule = _rule(
            f"rules[{len(self.rules)}]",
            {"pattern": pattern, "level": level, "sampling": sampling},
            self.source,
        )
        return Plan([*self.rules, rule], self.default_level, source=self.source)

    # -- queries ------------------------------------------------------------

    def level_for(self, module: str, qualname: str | None = None) -> tuple[str, float]:
        """The ``(level, sampling)`` of ``module.qualname`` (or of ``module`` itself)."""
        names = self._names(module)
        for index, rule in self._ordered:
            for name in names:
                full = f"{name}.{qualname}" if qualname else name
                if _matches(full, rule.pattern) or _matches(name, rule.pattern):
                    self._matched.add(index)
                    return rule.level, rule.sampling
        return self.default_level, 1.0

    def selects_module(self, module: str) -> bool:
        """Whether some function of ``module`` may be instrumented (so it must be rewritten).

        Never true for :func:`instrumentable`'s exclusions, whatever the rules say.
        """
        if not instrumentable(module):
            return False
        if self.default_level != "none":
            return True
        return any(
            rule.level != "none"
            and (_matches(name, rule.pattern) or _may_start_with(rule.pattern, name + "."))
            for rule in self.rules
            for name in self._names(module)
        )

    def unmatched_patterns(self) -> list[str]:
        """Patterns of rules that have not matched any function or module so far."""
        return [rule.pattern for index, rule in enumerate(self.rules) if index not in self._matched]

    def __repr__(self) -> str:
        rules = ", ".join(f"{r.pattern}={r.level}@{r.sampling:g}" for r in self.rules)
        return f"Plan(default_level={self.default_level!r}, rules=[{rules}])"


def instrumentable(module: str) -> bool:
    """Whether the import hook and live tracing may touch ``module``.

    Excluded: ElixirScope's own modules (except its bundled examples), the
    libraries its capture path runs on, and the standard library - the capture
    hooks call into these, so instrumenting them would record the recorder.
    """
    top = module.partition(".")[0]
    if top == "elixirscope":
        return module.startswith(_OWN_TRACEABLE)
    return top not in _EXCLUDED_TOPS and top not in sys.stdlib_module_names


_OWN_TRACEABLE = ("elixirscope.examples",)
_EXCLUDED_TOPS = frozenset(
    {
        "msgspec",
        "zmq",
        "structlog",
        "thespian",
        "psutil",
        "_pytest",
        "pytest",
        "pluggy",
        "hypothesis",
    }
)


# -- validation: one small check per field --------------------------------------


def _check_level(path: str, level: Any, source: str | None) -> None:
    if not isinstance(level, str) or level not in LEVELS:
        raise PlanError(path, f"one of {', '.join(LEVELS)}", level, source)


def _check_pattern(path: str, pattern: Any, source: str | None) -> None:
    if not isinstance(pattern, str) or not pattern.strip() or pattern != pattern.strip():
        raise PlanError(
            path, "a non-empty glob over module or module.qualname like 'myapp.*'", pattern, source
        )


def _check_sampling(path: str, sampling: Any, source: str | None) -> None:
    if (
        isinstance(sampling, bool)
        or not isinstance(sampling, (int, float))
        or not 0 < sampling <= 1
    ):
        raise PlanError(path, "a number with 0 < sampling <= 1", sampling, source)


def _rules(items: Any, source: str | None) -> list[Rule]:
    if not isinstance(items, list):
        raise PlanError("rules", "a list of rules (TOML [[rules]] tables)", items, source)
    return [_rule(f"rules[{i}]", item, source) for i, item in enumerate(items)]


def _rule(path: str, item: Any, source: str | None) -> Rule:
    if not isinstance(item, Mapping):
        raise PlanError(path, "a table with pattern, level and sampling", item, source)
    for key in item:
        if key not in _RULE_KEYS:
            raise PlanError(
                f"{path}.{key}", f"one of the keys {', '.join(_RULE_KEYS)}", item[key], source
            )
    if "pattern" not in item:
        raise PlanError(f"{path}.pattern", "a pattern (the key is missing)", None, source)
    pattern = item["pattern"]
    level = item.get("level", "boundaries")
    sampling = item.get("sampling", 1.0)
    _check_pattern(f"{path}.pattern", pattern, source)
    _check_level(f"{path}.level", level, source)
    _check_sampling(f"{path}.sampling", sampling, source)
    return Rule(pattern, level, float(sampling))


def _short_rules(data: Mapping[Any, Any], source: str | None) -> list[Rule]:
    rules = []
    for pattern, level in data.items():
        _check_pattern(f"[{pattern!r}]", pattern, source)
        _check_level(f"[{pattern!r}]", level, source)
        rules.append(Rule(pattern, level))
    return rules


# -- glob prefix matching ----------------------------------------------------------


def _matches(name: str, pattern: str) -> bool:
    """``fnmatchcase``, with a pattern without wildcards compared as it is (a planner's
    rules name functions one by one, and every import and function asks every rule)."""
    if not _GLOB.intersection(pattern):
        return name == pattern
    return fnmatchcase(name, pattern)


def _may_start_with(pattern: str, prefix: str) -> bool:
    """Whether some string beginning with ``prefix`` matches the fnmatch ``pattern``.

    Runs the glob as a small NFA over ``prefix``: a state is a position in the
    token list; if any state survives the prefix, the rest can be completed. A
    pattern without wildcards (a planner's rule names one function) is a plain
    prefix test: every import asks it of every rule.
    """
    if not _GLOB.intersection(pattern):
        return pattern.startswith(prefix)
    tokens = _tokens(pattern)
    states = _closure({0}, tokens)
    for ch in prefix:
        nxt: set[int] = set()
        for i in states:
            if i == len(tokens):
                continue
            kind, arg = tokens[i]
            if kind == "*":
                nxt.add(i)
            elif kind == "?" or (kind == "[" and fnmatchcase(ch, arg)) or arg == ch:
                nxt.add(i + 1)
        states = _closure(nxt, tokens)
        if not states:
            return False
    return bool(states)


def _closure(states: set[int], tokens: tuple[tuple[str, str], ...]) -> set[int]:
    out = set(states)
    for i in sorted(states):
        while i < len(tokens) and tokens[i][0] == "*":
            i += 1
            out.add(i)
    return out


_GLOB = frozenset("*?[")


@functools.lru_cache(maxsize=1024)
def _tokens(pattern: str) -> tuple[tuple[str, str], ...]:
    """The glob's tokens, once per pattern (every import asks of every rule)."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in "*?":
            tokens.append((ch, ch))
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                tokens.append(("c", ch))  # fnmatch treats an unclosed '[' literally
            else:
                tokens.append(("[", pattern[i : end + 1]))
                i = end
        else:
            tokens.append(("c", ch))
        i += 1
    return tuple(tokens)
