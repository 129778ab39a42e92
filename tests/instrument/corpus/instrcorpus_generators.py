"""Corpus: generators, coroutines and asynchronous generators."""

import asyncio
import traceback


def countdown(n):
    while n > 0:
        received = yield n
        if received:
            n = received
        n -= 1
    return "liftoff"


def delegate(n):
    result = yield from countdown(n)
    yield result


def case_generator():
    gen = countdown(5)
    out = [next(gen), gen.send(3), next(gen)]
    try:
        next(gen)
    except StopIteration as stop:
        out.append(stop.value)
    return out, list(delegate(3))


def guarded():
    try:
        yield 1
        yield 2
    except ValueError as exc:
        yield f"caught {exc}"
    finally:
        print("closing guarded")


def case_generator_throw_close():
    gen = guarded()
    first = next(gen)
    caught = gen.throw(ValueError("boom"))
    gen.close()
    return first, caught


def bad_generator():
    yield 1
    raise RuntimeError("generator failed")


def case_generator_error():
    return list(bad_generator())


async def fetch(x, delay=0):
    await asyncio.sleep(delay)
    return x * 10


async def ticker(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def gather_all():
    results = await asyncio.gather(fetch(1), fetch(2), fetch(3))
    ticks = [t async for t in ticker(3)]
    return results, ticks


def case_async():
    return asyncio.run(gather_all())


async def crash(x):
    await asyncio.sleep(0)
    raise KeyError(x)


async def awaits_crash():
    return await crash("k")


def case_async_error():
    return asyncio.run(awaits_crash())


async def agen_send():
    got = yield "first"
    yield f"got {got}"


async def drive_agen():
    gen = agen_send()
    first = await gen.__anext__()
    second = await gen.asend("hello")
    await gen.aclose()
    return first, second


def case_async_generator_send():
    return asyncio.run(drive_agen())


# -- the implicit awaits of async for / async with ------------------------------------


async def numbers(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i
    print("numbers done")


class Countdown:
    """A class-based async iterator: __aiter__ returns self, __anext__ is a coroutine."""

    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at

    def __aiter__(self):
        print("aiter", self.n)
        return self

    async def __anext__(self):
        await asyncio.sleep(0)
        if self.n == self.fail_at:
            raise ValueError(f"anext failed at {self.n}")
        if self.n <= 0:
            raise StopAsyncIteration
        self.n -= 1
        return self.n + 1


async def loops():
    seen = []
    async for i in numbers(6):
        if i == 1:
            continue
        if i == 4:
            break
        seen.append(i)
    else:
        seen.append("no break")
    async for i in numbers(2):
        seen.append(i * 10)
    else:
        seen.append("else ran")
    async for n in Countdown(5):
        if n % 2:
            continue
        seen.append(-n)
    else:
        seen.append("countdown else")
    async for n in Countdown(5):
        if n == 3:
            break
        seen.append(n)
    return seen


def case_async_for_loops():
    return asyncio.run(loops())


async def anext_fails():
    total = 0
    async for n in Countdown(3, fail_at=1):
        total += n
    return total


def case_async_for_error_in_anext():
    return asyncio.run(anext_fails())


class BadAiter:
    def __aiter__(self):
        raise LookupError("no iterator today")


async def aiter_fails():
    async for x in BadAiter():
        return x


def case_async_for_error_in_aiter():
    return asyncio.run(aiter_fails())


async def not_async_iterable():
    async for x in [1, 2, 3]:
        return x


def case_async_for_not_async_iterable():
    return asyncio.run(not_async_iterable())


class NoAnext:
    def __aiter__(self):
        return [1, 2]


async def aiter_without_anext():
    async for x in NoAnext():
        return x


def case_async_for_aiter_without_anext():
    return asyncio.run(aiter_without_anext())


class AnextNotAwaitable:
    def __aiter__(self):
        return self

    def __anext__(self):
        return 42


async def anext_not_awaitable():
    async for x in AnextNotAwaitable():
        return x


def case_async_for_anext_not_awaitable():
    return asyncio.run(anext_not_awaitable())


async def failing_numbers():
    yield 1
    await asyncio.sleep(0)
    raise RuntimeError("async generator failed")


async def agen_fails():
    got = []
    async for x in failing_numbers():
        got.append(x)
    return got


def case_async_for_error_in_async_generator():
    return asyncio.run(agen_fails())


class Resource:
    """An async context manager that reports what it sees; suppresses KeyError if asked."""

    def __init__(self, name, suppress=False, fail_enter=False, fail_exit=False):
        self.name, self.suppress = name, suppress
        self.fail_enter, self.fail_exit = fail_enter, fail_exit

    async def __aenter__(self):
        await asyncio.sleep(0)
        print("enter", self.name)
        if self.fail_enter:
            raise ConnectionError(f"cannot open {self.name}")
        return self.name.upper()

    async def __aexit__(self, exc_type, exc, tb):
        await asyncio.sleep(0)
        print("exit", self.name, exc_type.__name__ if exc_type else None, exc,
              [(f.name, f.lineno, f.line) for f in traceback.extract_tb(tb)])
        if self.fail_exit:
            raise OSError(f"cannot close {self.name}")
        return self.suppress and exc_type is KeyError


async def with_normal():
    async with Resource("a") as got:
        print("inside", got)
    return got


def case_async_with_normal():
    return asyncio.run(with_normal())


async def with_suppressed():
    async with Resource("b", suppress=True) as got:
        raise KeyError(got)
    return "after suppressed"


def case_async_with_suppressed():
    return asyncio.run(with_suppressed())


async def with_propagated():
    async with Resource("c", suppress=True) as got:
        raise ValueError(got)


def case_async_with_propagated():
    return asyncio.run(with_propagated())


async def with_return():
    for name in ("d", "e"):
        async with Resource(name) as got:
            if name == "d":
                return got + "!"
    return None


def case_async_with_return():
    return asyncio.run(with_return())


async def with_two_items():
    async with Resource("f") as first, Resource("g", suppress=True) as second:
        print("both", first, second)
        raise KeyError("inner")
    return first, second


def case_async_with_two_items():
    return asyncio.run(with_two_items())


async def with_enter_fails():
    async with Resource("h") as ok, Resource("i", fail_enter=True) as never:
        print("not reached", ok, never)


def case_async_with_enter_fails():
    return asyncio.run(with_enter_fails())


async def with_exit_fails():
    async with Resource("j", fail_exit=True):
        raise KeyError("body")


def case_async_with_exit_fails():
    return asyncio.run(with_exit_fails())


async def with_not_a_manager():
    async with Resource("k"), open:
        pass


def case_async_with_not_a_manager():
    return asyncio.run(with_not_a_manager())


class EnterNotAwaitable:
    def __aenter__(self):
        return "not awaitable"

    async def __aexit__(self, *exc):
        return False


async def with_enter_not_awaitable():
    async with EnterNotAwaitable() as x:
        return x


def case_async_with_enter_not_awaitable():
    return asyncio.run(with_enter_not_awaitable())


async def comprehensions():
    squares = [x * x async for x in numbers(4) if x != 2]
    odd = {x async for x in Countdown(5) if x % 2}
    table = {x: [y async for y in numbers(x)] async for x in Countdown(3)}
    nested = [[y for y in range(x)] async for x in numbers(3)]
    later = (x async for x in numbers(2))     # an async generator expression: run below
    return squares, sorted(odd), table, nested, [x async for x in later]


def case_async_comprehensions():
    return asyncio.run(comprehensions())


async def comprehension_error():
    return [n async for n in Countdown(4, fail_at=2)]


def case_async_comprehension_error():
    return asyncio.run(comprehension_error())


async def loop_locals():
    found = []
    async for item in numbers(2):
        doubled = item * 2
        found.append(sorted(locals()))
    async with Resource("l") as handle:
        found.append(sorted(locals()))
    return found, doubled, handle


def case_async_locals():
    return asyncio.run(loop_locals())


async def agen_with_loops(n):
    async with Resource("m") as name:
        async for i in numbers(n):
            yield name, i


async def drive_agen_with_loops():
    return [pair async for pair in agen_with_loops(3)]


def case_async_generator_with_loops():
    return asyncio.run(drive_agen_with_loops())
