"""Hyperparameter validation from scikit-learn-style constraint declarations.

Estimators declare their parameters' constraints once, in the
``_parameter_constraints`` class attribute, with scikit-learn's constraint
objects (``Interval``, ``StrOptions``, types, ``"boolean"``...), as
scikit-learn's own estimators do. :func:`validate_params` checks a parameter
dict against them with scikit-learn's constraint logic, and words the error as
this package's other errors are worded: ``"<name> must be <what>; got
<value>."``. Public functions declare theirs in the :func:`checked`
decorator, as scikit-learn's functions do in its ``@validate_params``.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os

from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    _Constraint,
    make_constraint,
)

__all__ = [
    "Condition",
    "Interval",
    "InvalidParameterError",
    "SequenceOf",
    "StrOptions",
    "TorchDevice",
    "checked",
    "validate_params",
]

POSITIVE = Interval(numbers.Integral, 1, None, closed="left")


class SequenceOf(_Constraint):
    """A tuple or a list whose entries each satisfy one of `options`.

    Parameters
    ----------
    options : list
        Constraints (as in ``_parameter_constraints``) of each entry.
    description : str
        What the entries are, in words ("positive integers").
    """

    def __init__(self, options, description):
        super().__init__()
        self.options = [_constraint(c) for c in options]
        self.description = description

    def is_satisfied_by(self, val):
        return isinstance(val, (tuple, list)) and all(
            any(_satisfies(option, v) for option in self.options) for v in val
        )

    def __str__(self):
        return f"a tuple of {self.description}"


class Condition(_Constraint):
    """A value for which `test` is true, for a rule no scikit-learn
    constraint states (a pair of bounds in order, a template with a slot).

    Parameters
    ----------
    test : callable
        Takes the value, returns whether it is allowed; never raises.
    description : str
        What an allowed value is, in words ("a str containing '{value}'").
    """

    def __init__(self, test, description):
        super().__init__()
        self.test = test
        self.description = description

    def is_satisfied_by(self, val):
        return bool(self.test(val))

    def __str__(self):
        return self.description


class TorchDevice(_Constraint):
    """A str or torch.device naming a device that holds data.

    torch must parse it, and its type must not be ``"meta"``: meta tensors
    have shapes but no values, so nothing can be trained or predicted there.
    """

    def is_satisfied_by(self, val):
        import torch

        if not isinstance(val, (str, torch.device)):
            return False
        try:
            device = torch.device(val)
        except (RuntimeError, TypeError, ValueError):
            return False
        return device.type != "meta"

    def __str__(self):
        return "a torch device such as 'cpu', 'cuda', 'cuda:1' or 'mps' (not 'meta')"


def validate_params(constraints, params):
    """Check each of `params` against its entry of `constraints`.

    Parameters
    ----------
    constraints : dict of str to list or "no_validation"
        A ``_parameter_constraints`` declaration: for each parameter, the
        constraints of which the value must satisfy at least one.
    params : dict
        The parameter values (``get_params(deep=False)``).

    Raises
    ------
    InvalidParameterError
        (a ``ValueError`` and a ``TypeError``) naming the first parameter that
        satisfies none of its constraints, what it must be and what it is.
    """
    for name, declared in constraints.items():
        if isinstance(declared, str) and declared == "no_validation":
            continue
        value = params[name]
        options = [_constraint(c) for c in declared]
        if any(_satisfies(option, value) for option in options):
            continue
        visible = [o for o in options if not getattr(o, "hidden", False)]
        if len(visible) == 1 and isinstance(visible[0], SequenceOf):
            raise InvalidParameterError(
                f"{name} may list {visible[0].description}; got {value!r}."
            )
        raise InvalidParameterError(
            f"{name} must be {describe(visible)}; got {value!r}."
        )


def checked(constraints):
    """Decorate a public function to check its arguments on each call.

    Parameters
    ----------
    constraints : dict of str to list or "no_validation"
        For some of the function's parameters, the constraints of which the
        argument (or its default) must satisfy at least one, as in
        ``_parameter_constraints``.

    Returns
    -------
    callable
        The decorator. The decorated function raises
        :class:`InvalidParameterError` (see :func:`validate_params`) before it
        runs when an argument satisfies none of its constraints.
    """

    def decorate(func):
        signature = inspect.signature(func)
        unknown = sorted(set(constraints) - set(signature.parameters))
        if unknown:  # a typo in a declaration would silently check nothing
            raise ValueError(f"{func.__name__} has no parameter(s) {unknown}.")

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            validate_params(constraints, bound.arguments)
            return func(*args, **kwargs)

        return wrapper

    return decorate


def _satisfies(constraint, value):
    # True and False are integers to Python, but not sizes or counts.
    if isinstance(value, bool) and isinstance(constraint, Interval):
        return False
    return constraint.is_satisfied_by(value)


def _constraint(declared):
    # scikit-learn's make_constraint knows its own constraint classes only.
    return declared if isinstance(declared, _Constraint) else make_constraint(declared)


def describe(options):
    """What a value satisfying one of the constraint objects `options` is, in words."""
    choices = [o for o in options if isinstance(o, StrOptions) or _is_none(o)]
    if choices and len(choices) == len(options):
        listed = [
            s for o in choices if isinstance(o, StrOptions) for s in sorted(o.options)
        ]
        if any(_is_none(o) for o in choices):
            listed.append(None)
        return f"one of {listed}"
    return " or ".join(_describe_one(o) for o in options)


def _is_none(constraint):
    return type(constraint).__name__ == "_NoneConstraint"


def _describe_one(constraint):
    if isinstance(constraint, StrOptions):
        return " or ".join(repr(s) for s in sorted(constraint.options))
    if isinstance(constraint, Interval):
        return _describe_interval(constraint)
    if type(constraint).__name__ == "_Booleans":
        return "a bool"
    if type(constraint).__name__ == "_InstancesOf" and constraint.type in _TYPE_NAMES:
        return _TYPE_NAMES[constraint.type]
    return str(constraint)


# Types named as the package's messages name them ("a str", not "an instance
# of 'str'").
_TYPE_NAMES = {
    str: "a str",
    dict: "a dict",
    list: "a list",
    tuple: "a tuple",
    os.PathLike: "a path-like",
    numbers.Integral: "an integer",
    numbers.Real: "a number",
}


def _describe_interval(interval):
    integer = interval.type is numbers.Integral
    if interval.right is None and interval.closed in ("left", "both"):
        if integer and interval.left == 1:
            return "a positive integer"
        if interval.left == 0:
            return "a non-negative integer" if integer else "a non-negative number"
    kind = "an integer" if integer else "a number"
    # Integer bounds in full: "2.14748e+09" would not say which is allowed.
    bound = "{:d}" if integer else "{:g}"
    if interval.left is None and interval.right is None:
        return kind
    if interval.right is None and interval.closed in ("left", "both"):
        return f"{kind} >= {bound.format(interval.left)}"
    if (
        integer
        and interval.left == 1
        and interval.right is not None
        and interval.closed == "both"
    ):
        return f"a positive integer up to {interval.right:d}"
    if interval.right is None and interval.left == 0 and not integer:
        return "a positive number"
    left = "[" if interval.closed in ("left", "both") else "("
    right = "]" if interval.closed in ("right", "both") else ")"
    low = "-inf" if interval.left is None else bound.format(interval.left)
    high = "inf" if interval.right is None else bound.format(interval.right)
    return f"{kind} in {left}{low}, {high}{right}"
