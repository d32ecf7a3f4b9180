"""Class groups of the error analysis: which classes count as similar (Sim) rather than other (Oth).

``error_analysis(groups=...)`` takes a dict {group name: [class names]}. The default, ``default_groups``,
takes the paper's VOC groups for VOC class names (animals, vehicles, furniture; every other class in
a group of its own, as Hoiem's similar-class lists) and, for the built-in shapes, "with corners"
(square, triangle, star, cross) and "round" (circle): a square read as a star is the kind of
confusion a similar outline invites, a circle read as a square is not. A class that no group names
is a group of its own.

Separate from ``analysis.py`` because choosing the groups is a question of
the data's classes, not of the analysis: a reader adapting the analysis to
their own classes reads this page only.
"""

from __future__ import annotations

VOC_GROUPS = {
    "animals": ("bird", "cat", "cow", "dog", "horse", "sheep"),
    "vehicles": ("aeroplane", "bicycle", "boat", "bus", "car", "motorbike", "train"),
    "furniture": ("chair", "diningtable", "sofa"),
}
SHAPES_GROUPS = {"with corners": ("square", "triangle", "star", "cross"), "round": ("circle",)}


def _key(name) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


def default_groups(class_names) -> dict:
    """{group: [names]} for ``class_names`` (background at 0): VOC's and the shapes' groups, in that order,
    restricted to the classes present (members in label order), then every other class alone."""
    known = {_key(member): group for table in (VOC_GROUPS, SHAPES_GROUPS) for group, members in table.items()
             for member in members}
    order = [group for table in (VOC_GROUPS, SHAPES_GROUPS) for group in table]
    names = [str(n) for n in list(class_names)[1:]]
    grouped = {group: [n for n in names if known.get(_key(n)) == group] for group in order}
    groups = {group: members for group, members in grouped.items() if members}
    for name in names:
        if _key(name) not in known:
            groups[name if name not in groups else f"{name} (class)"] = [name]
    return groups


def resolve_groups(class_names, groups=None) -> dict:
    """{group: tuple of labels} covering every class once; a ValueError naming the group and entry."""
    names = list(class_names)
    if groups is None:
        groups = default_groups(names)
    if not isinstance(groups, dict):
        raise TypeError(f"groups must be a dict {{group name: [class names]}}; got {type(groups).__name__}")
    label_of = {_key(n): k for k, n in enumerate(names) if k > 0}
    resolved, owner = {}, {}
    for group, members in groups.items():
        if isinstance(members, (str, bytes)) or not hasattr(members, "__iter__"):
            raise ValueError(f"groups[{group!r}] must be a list of class names; got {members!r}")
        labels = []
        for position, member in enumerate(members):
            label = label_of.get(_key(member)) if isinstance(member, str) else None
            if label is None:
                raise ValueError(f"groups[{group!r}][{position}] = {member!r} is not a class of the data "
                                 f"(classes: {', '.join(map(str, names[1:]))})")
            if label in owner:
                raise ValueError(f"groups[{group!r}][{position}] = {member!r} is already in group "
                                 f"{owner[label]!r}; a class belongs to one group")
            owner[label] = group
            labels.append(label)
        if not labels:
            raise ValueError(f"groups[{group!r}] is empty; list at least one class")
        resolved[str(group)] = tuple(labels)
    for label in range(1, len(names)):
        if label not in owner:
            if str(names[label]) in resolved:
                raise ValueError(f"class {names[label]!r} is in no group, and a group already has its name")
            resolved[str(names[label])] = (label,)
    return resolved
