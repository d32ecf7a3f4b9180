"""The COCO label space of torchvision's detection weights: 91 slots, label = COCO category id.

COCO's 2017 detection set has 80 categories, but their ids run from 1 to 90 with ten ids
unused (12, 26, 29, 30, 45, 66, 68, 69, 71, 83: categories of the original 91-category
list that were dropped before release). torchvision's COCO detectors keep the ids as
labels, so their classification heads have 91 outputs: slot 0 the background, slot k the
category whose id is k, and "N/A" where no category has that id. A model converted from
such weights has the same 91 slots, and its metadata says so
(``"label_space": "coco-category-ids"``), so evaluation maps a COCO annotation's
``category_id`` straight to the model's slot instead of numbering the 80 names 1..80.
"""

# COCO category id -> name (instances_*.json "categories"), the 80 that exist
COCO_CATEGORIES = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train",
    8: "truck", 9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign",
    14: "parking meter", 15: "bench", 16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep",
    21: "cow", 22: "elephant", 23: "bear", 24: "zebra", 25: "giraffe", 27: "backpack",
    28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase", 34: "frisbee", 35: "skis",
    36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat", 40: "baseball glove",
    41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle", 46: "wine glass",
    47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple",
    54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza",
    60: "donut", 61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed",
    67: "dining table", 70: "toilet", 72: "tv", 73: "laptop", 74: "mouse", 75: "remote",
    76: "keyboard", 77: "cell phone", 78: "microwave", 79: "oven", 80: "toaster", 81: "sink",
    82: "refrigerator", 84: "book", 85: "clock", 86: "vase", 87: "scissors", 88: "teddy bear",
    89: "hair drier", 90: "toothbrush",
}
COCO_SLOTS = 91  # the background and ids 1..90
UNUSED = "N/A"  # torchvision's name for an id no category has
LABEL_SPACE = "coco-category-ids"  # metadata extra "label_space" of a model with these slots

# minissd's class-name list for the 91 slots: index = label = COCO category id
COCO_CATEGORY_NAMES = ["background"] + [COCO_CATEGORIES.get(i, UNUSED) for i in range(1, COCO_SLOTS)]
