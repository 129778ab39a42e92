"""Corpus: classes, methods and the data model."""

import dataclasses
import inspect


class Base:
    registry = []

    def __init_subclass__(cls, tag="none", **kwargs):
        super().__init_subclass__(**kwargs)
        cls.tag = tag
        Base.registry.append(cls.__name__)

    def __init__(self, name):
        self.name = name
        self.count = 0

    def describe(self):
        """Say who this is."""
        return f"{type(self).__name__}({self.name})"

    @classmethod
    def make(cls, name):
        return cls(name)

    @staticmethod
    def double(x):
        return 2 * x

    @property
    def upper(self):
        return self.name.upper()

    @upper.setter
    def upper(self, value):
        self.name = value.lower()


class Child(Base, tag="child"):
    def __init__(self, name, extra):
        super().__init__(name)
        self.extra = extra
        self.count += 1
        self.a, (self.b, _rest) = 1, (2, 3)
        self.note: str = "annotated"

    def describe(self):
        return "child:" + super().describe()

    def uses_class_cell(self):
        return __class__.__name__


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0
    tags: list = dataclasses.field(default_factory=list)

    def norm1(self):
        return abs(self.x) + abs(self.y)


class Outer:
    class Inner:
        def where(self):
            return type(self).__qualname__

    def make_inner(self):
        return self.Inner()


def case_methods():
    c = Child("bob", extra=[1])
    return (c.describe(), Child.make.__qualname__, Base.double(4), c.upper,
            c.uses_class_cell(), c.count, c.a, c.b, c.note, Child.tag, Base.registry)


def case_property_setter():
    b = Base("ann")
    b.upper = "ZED"
    return b.name, b.upper


def case_dataclass():
    p = Point(3, -4)
    return (p, p.norm1(), Point(1) == Point(1), dataclasses.asdict(p),
            str(inspect.signature(Point)))


def case_nested_class():
    return Outer().make_inner().where(), Outer.Inner.where.__qualname__


def case_method_error():
    return Child("c", None).describe().missing
