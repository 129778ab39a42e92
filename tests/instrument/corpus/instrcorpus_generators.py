"""Corpus: generators, coroutines and asynchronous generators."""

import asyncio


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
