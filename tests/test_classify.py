"""Person/product decision from the pose stage's evidence (unit level; the end-to-end tests
check it on real photos)."""
import numpy as np

from ml.stages.classify import decide_kind
from ml.types import KP, Keypoints, PoseResult


def pose(score, visible=(), mask_share=None):
    kp = Keypoints.empty()
    for n in visible:
        kp.score[KP[n]] = 0.95
    mask = None if mask_share is None else np.full((10, 10), mask_share, np.float32)
    return PoseResult(person_score=score, keypoints=kp, mask_prob=mask)


BODY = ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip")


def test_no_person_is_a_product():
    d = decide_kind(pose(0.0))
    assert d.kind == "product" and d.confidence > 0.9


def test_full_body_with_mask_is_a_person():
    d = decide_kind(pose(0.95, BODY, mask_share=0.3))
    assert d.kind == "person" and d.confidence > 0.8


def test_hand_at_the_edge_of_a_packshot_stays_a_product():
    d = decide_kind(pose(0.6, ("left_wrist",), mask_share=0.01))
    assert d.kind == "product"
    assert "too little of a body" in d.reason


def test_engine_without_mask_still_decides_person_on_structure():
    # e.g. the trained OpenPose engine gives keypoints but no person mask
    d = decide_kind(pose(0.7, BODY, mask_share=None))
    assert d.kind == "person"
    assert decide_kind(pose(0.7, (), mask_share=None)).kind == "product"


def test_the_parsers_skin_counts_only_where_its_colour_can_be_skin():
    """The parser called an iMac's pink-and-violet wallpaper skin; with the photo given,
    ``add_parser`` counts only its skin pixels whose colour can be skin."""
    from types import SimpleNamespace

    from ml.garments import CLASSES
    from ml.stages.classify import BodyEvidence, add_parser
    labels = np.zeros((200, 200), np.uint8)
    labels[50:150, 50:150] = CLASSES.index("skin")            # a quarter of the image
    shares = {"skin": 0.25}
    parse = SimpleNamespace(person_prob=0.95, shares=shares, labels=labels)

    def ev():
        return BodyEvidence(subject_share=0.5, skin_share=0.0, cut=0.0, limbs=0.0, limb_joints=0)
    violet = np.full((200, 200, 3), (170, 60, 200), np.uint8)
    skin = np.full((200, 200, 3), (224, 172, 140), np.uint8)
    assert add_parser(ev(), parse).parser_skin == 0.5            # no photo: the map alone
    assert add_parser(ev(), parse, violet).parser_skin == 0.0
    assert add_parser(ev(), parse, skin).parser_skin == 0.5
    bw = ev()
    bw.colour = False                                            # black and white: colour says nothing
    assert add_parser(bw, parse, violet).parser_skin == 0.5
