"""Default configuration: the keys of the official ATSS code (maskrcnn-benchmark lineage).

Every key keeps its official name, type and default so that the official yaml
files merge unchanged; keys added by atss_core are in one block at the end ("Additions"),
each with a comment.
Merging a file or an override with an unknown key fails and names the key.
"""
import os

from .config_node import CfgNode as CN

_C = CN()

_C.MODEL = CN()
_C.MODEL.RPN_ONLY = False  # detector without ROI heads (ATSS, RetinaNet, FCOS)
_C.MODEL.MASK_ON = False
_C.MODEL.RETINANET_ON = False
_C.MODEL.KEYPOINT_ON = False
_C.MODEL.FCOS_ON = False
_C.MODEL.ATSS_ON = False  # use the ATSS head as the "rpn"
_C.MODEL.DEVICE = "cuda"  # "cuda" or "cpu"
_C.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
_C.MODEL.CLS_AGNOSTIC_BBOX_REG = False
_C.MODEL.WEIGHT = ""  # checkpoint or pretrained weights: a path or a catalog:// name
_C.MODEL.USE_SYNCBN = False  # (config compatibility; unused: the ResNet norms are frozen BN or GN)

# -----------------------------------------------------------------------------
# Input
# -----------------------------------------------------------------------------
_C.INPUT = CN()
_C.INPUT.MIN_SIZE_TRAIN = (800,)  # shorter side; one is sampled per image when several are given
_C.INPUT.MIN_SIZE_RANGE_TRAIN = (-1, -1)  # if both > 0, sample the shorter side uniformly in this range
_C.INPUT.MAX_SIZE_TRAIN = 1333  # cap on the longer side during training
_C.INPUT.MIN_SIZE_TEST = 800
_C.INPUT.MAX_SIZE_TEST = 1333
_C.INPUT.PIXEL_MEAN = [102.9801, 115.9465, 122.7717]  # BGR means of the Caffe2 ImageNet models
_C.INPUT.PIXEL_STD = [1.0, 1.0, 1.0]
_C.INPUT.TO_BGR255 = True  # images in BGR, 0..255 (Caffe2-style pretrained weights)

# -----------------------------------------------------------------------------
# Datasets
# -----------------------------------------------------------------------------
_C.DATASETS = CN()
_C.DATASETS.TRAIN = ()  # names from paths_catalog.py
_C.DATASETS.TEST = ()

# -----------------------------------------------------------------------------
# Data loader
# -----------------------------------------------------------------------------
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
_C.DATALOADER.SIZE_DIVISIBILITY = 0  # pad batched images to a multiple of this (32 for FPN)
_C.DATALOADER.ASPECT_RATIO_GROUPING = True  # batch portrait and landscape images separately

# -----------------------------------------------------------------------------
# Backbone
# -----------------------------------------------------------------------------
_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.CONV_BODY = "R-50-C4"  # registry name of the backbone builder
_C.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = 2  # stages < this are frozen (stem = 1)
_C.MODEL.BACKBONE.USE_GN = False

_C.MODEL.FPN = CN()
_C.MODEL.FPN.USE_GN = False
_C.MODEL.FPN.USE_RELU = False

_C.MODEL.GROUP_NORM = CN()
_C.MODEL.GROUP_NORM.DIM_PER_GP = -1  # channels per group (-1: use NUM_GROUPS)
_C.MODEL.GROUP_NORM.NUM_GROUPS = 32
_C.MODEL.GROUP_NORM.EPSILON = 1e-5

# -----------------------------------------------------------------------------
# RPN (two-stage detectors; kept for config compatibility)
# -----------------------------------------------------------------------------
_C.MODEL.RPN = CN()
_C.MODEL.RPN.USE_FPN = False
_C.MODEL.RPN.ANCHOR_SIZES = (32, 64, 128, 256, 512)
_C.MODEL.RPN.ANCHOR_STRIDE = (16,)
_C.MODEL.RPN.ASPECT_RATIOS = (0.5, 1.0, 2.0)
_C.MODEL.RPN.STRADDLE_THRESH = 0
_C.MODEL.RPN.FG_IOU_THRESHOLD = 0.7
_C.MODEL.RPN.BG_IOU_THRESHOLD = 0.3
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
_C.MODEL.RPN.PRE_NMS_TOP_N_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOP_N_TEST = 6000
_C.MODEL.RPN.POST_NMS_TOP_N_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOP_N_TEST = 1000
_C.MODEL.RPN.NMS_THRESH = 0.7
_C.MODEL.RPN.MIN_SIZE = 0
_C.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN = 2000
_C.MODEL.RPN.FPN_POST_NMS_TOP_N_TEST = 2000
_C.MODEL.RPN.RPN_HEAD = "SingleConvRPNHead"

# -----------------------------------------------------------------------------
# ROI heads (two-stage detectors; kept for config compatibility)
# -----------------------------------------------------------------------------
_C.MODEL.ROI_HEADS = CN()
_C.MODEL.ROI_HEADS.USE_FPN = False
_C.MODEL.ROI_HEADS.FG_IOU_THRESHOLD = 0.5
_C.MODEL.ROI_HEADS.BG_IOU_THRESHOLD = 0.5
_C.MODEL.ROI_HEADS.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
_C.MODEL.ROI_HEADS.SCORE_THRESH = 0.05
_C.MODEL.ROI_HEADS.NMS = 0.5
_C.MODEL.ROI_HEADS.DETECTIONS_PER_IMG = 100

_C.MODEL.ROI_BOX_HEAD = CN()
_C.MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR = "ResNet50Conv5ROIFeatureExtractor"
_C.MODEL.ROI_BOX_HEAD.PREDICTOR = "FastRCNNPredictor"
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_BOX_HEAD.POOLER_SCALES = (1.0 / 16,)
_C.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 81
_C.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM = 1024
_C.MODEL.ROI_BOX_HEAD.USE_GN = False
_C.MODEL.ROI_BOX_HEAD.DILATION = 1
_C.MODEL.ROI_BOX_HEAD.CONV_HEAD_DIM = 256
_C.MODEL.ROI_BOX_HEAD.NUM_STACKED_CONVS = 4

_C.MODEL.ROI_MASK_HEAD = CN()
_C.MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR = "ResNet50Conv5ROIFeatureExtractor"
_C.MODEL.ROI_MASK_HEAD.PREDICTOR = "MaskRCNNC4Predictor"
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_MASK_HEAD.POOLER_SCALES = (1.0 / 16,)
_C.MODEL.ROI_MASK_HEAD.MLP_HEAD_DIM = 1024
_C.MODEL.ROI_MASK_HEAD.CONV_LAYERS = (256, 256, 256, 256)
_C.MODEL.ROI_MASK_HEAD.RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR = True
_C.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS = False
_C.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS_THRESHOLD = 0.5
_C.MODEL.ROI_MASK_HEAD.DILATION = 1
_C.MODEL.ROI_MASK_HEAD.USE_GN = False

_C.MODEL.ROI_KEYPOINT_HEAD = CN()
_C.MODEL.ROI_KEYPOINT_HEAD.FEATURE_EXTRACTOR = "KeypointRCNNFeatureExtractor"
_C.MODEL.ROI_KEYPOINT_HEAD.PREDICTOR = "KeypointRCNNPredictor"
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_SCALES = (1.0 / 16,)
_C.MODEL.ROI_KEYPOINT_HEAD.MLP_HEAD_DIM = 1024
_C.MODEL.ROI_KEYPOINT_HEAD.CONV_LAYERS = tuple(512 for _ in range(8))
_C.MODEL.ROI_KEYPOINT_HEAD.RESOLUTION = 14
_C.MODEL.ROI_KEYPOINT_HEAD.NUM_CLASSES = 17
_C.MODEL.ROI_KEYPOINT_HEAD.SHARE_BOX_FEATURE_EXTRACTOR = True

# -----------------------------------------------------------------------------
# ResNe(X)t
# -----------------------------------------------------------------------------
_C.MODEL.RESNETS = CN()
_C.MODEL.RESNETS.NUM_GROUPS = 1  # 1 = ResNet, > 1 = ResNeXt
_C.MODEL.RESNETS.WIDTH_PER_GROUP = 64  # bottleneck width of stage 2 per group
_C.MODEL.RESNETS.STRIDE_IN_1X1 = True  # stride in the 1x1 conv (MSRA ResNet) or in the 3x3 (ResNeXt)
_C.MODEL.RESNETS.TRANS_FUNC = "BottleneckWithFixedBatchNorm"
_C.MODEL.RESNETS.STEM_FUNC = "StemWithFixedBatchNorm"
_C.MODEL.RESNETS.RES5_DILATION = 1
_C.MODEL.RESNETS.BACKBONE_OUT_CHANNELS = 256 * 4  # FPN output channels for FPN bodies
_C.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
_C.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
_C.MODEL.RESNETS.STAGE_WITH_DCN = (False, False, False, False)  # deformable 3x3 per stage (res2..res5)
_C.MODEL.RESNETS.WITH_MODULATED_DCN = False  # DCNv2 instead of v1
_C.MODEL.RESNETS.DEFORMABLE_GROUPS = 1

# -----------------------------------------------------------------------------
# RetinaNet
# -----------------------------------------------------------------------------
_C.MODEL.RETINANET = CN()
_C.MODEL.RETINANET.NUM_CLASSES = 81
_C.MODEL.RETINANET.ANCHOR_SIZES = (32, 64, 128, 256, 512)
_C.MODEL.RETINANET.ASPECT_RATIOS = (0.5, 1.0, 2.0)
_C.MODEL.RETINANET.ANCHOR_STRIDES = (8, 16, 32, 64, 128)
_C.MODEL.RETINANET.STRADDLE_THRESH = 0
_C.MODEL.RETINANET.OCTAVE = 2.0
_C.MODEL.RETINANET.SCALES_PER_OCTAVE = 3
_C.MODEL.RETINANET.USE_C5 = True  # P6 from C5 (True) or from P5 (False)
_C.MODEL.RETINANET.NUM_CONVS = 4
_C.MODEL.RETINANET.BBOX_REG_WEIGHT = 4.0
_C.MODEL.RETINANET.BBOX_REG_BETA = 0.11
_C.MODEL.RETINANET.PRE_NMS_TOP_N = 1000
_C.MODEL.RETINANET.FG_IOU_THRESHOLD = 0.5
_C.MODEL.RETINANET.BG_IOU_THRESHOLD = 0.4
_C.MODEL.RETINANET.LOSS_ALPHA = 0.25
_C.MODEL.RETINANET.LOSS_GAMMA = 2.0
_C.MODEL.RETINANET.PRIOR_PROB = 0.01
_C.MODEL.RETINANET.INFERENCE_TH = 0.05
_C.MODEL.RETINANET.NMS_TH = 0.4

# -----------------------------------------------------------------------------
# FCOS (kept for config compatibility)
# -----------------------------------------------------------------------------
_C.MODEL.FCOS = CN()
_C.MODEL.FCOS.NUM_CLASSES = 81
_C.MODEL.FCOS.FPN_STRIDES = [8, 16, 32, 64, 128]
_C.MODEL.FCOS.PRIOR_PROB = 0.01
_C.MODEL.FCOS.INFERENCE_TH = 0.05
_C.MODEL.FCOS.NMS_TH = 0.6
_C.MODEL.FCOS.PRE_NMS_TOP_N = 1000
_C.MODEL.FCOS.LOSS_ALPHA = 0.25
_C.MODEL.FCOS.LOSS_GAMMA = 2.0
_C.MODEL.FCOS.NUM_CONVS = 4
_C.MODEL.FCOS.USE_DCN_IN_TOWER = False
_C.MODEL.FCOS.CENTERNESS_ON_REG = False
_C.MODEL.FCOS.NORM_REG_TARGETS = False
_C.MODEL.FCOS.CENTER_SAMPLING_RADIUS = 0.0
_C.MODEL.FCOS.IOU_LOSS_TYPE = "iou"

# -----------------------------------------------------------------------------
# FBNet (config compatibility; no FBNet backbone in atss_core)
# -----------------------------------------------------------------------------
_C.MODEL.FBNET = CN()
_C.MODEL.FBNET.ARCH = "default"
_C.MODEL.FBNET.ARCH_DEF = ""
_C.MODEL.FBNET.BN_TYPE = "bn"
_C.MODEL.FBNET.SCALE_FACTOR = 1.0
_C.MODEL.FBNET.WIDTH_DIVISOR = 1
_C.MODEL.FBNET.DW_CONV_SKIP_BN = True
_C.MODEL.FBNET.DW_CONV_SKIP_RELU = True
_C.MODEL.FBNET.DET_HEAD_LAST_SCALE = 1.0
_C.MODEL.FBNET.DET_HEAD_BLOCKS = []
_C.MODEL.FBNET.DET_HEAD_STRIDE = 0
_C.MODEL.FBNET.KPTS_HEAD_LAST_SCALE = 0.0
_C.MODEL.FBNET.KPTS_HEAD_BLOCKS = []
_C.MODEL.FBNET.KPTS_HEAD_STRIDE = 0
_C.MODEL.FBNET.MASK_HEAD_LAST_SCALE = 0.0
_C.MODEL.FBNET.MASK_HEAD_BLOCKS = []
_C.MODEL.FBNET.MASK_HEAD_STRIDE = 0
_C.MODEL.FBNET.RPN_HEAD_BLOCKS = 0
_C.MODEL.FBNET.RPN_BN_TYPE = ""

# -----------------------------------------------------------------------------
# ATSS
# -----------------------------------------------------------------------------
_C.MODEL.ATSS = CN()
_C.MODEL.ATSS.NUM_CLASSES = 81  # counts the background
_C.MODEL.ATSS.PRIOR_PROB = 0.01  # initial foreground probability of cls_logits
_C.MODEL.ATSS.INFERENCE_TH = 0.05  # score threshold before NMS
_C.MODEL.ATSS.NMS_TH = 0.6
_C.MODEL.ATSS.PRE_NMS_TOP_N = 1000  # candidates kept per level before NMS
_C.MODEL.ATSS.NUM_CONVS = 4  # conv + GN + ReLU layers per tower
_C.MODEL.ATSS.REG_LOSS_WEIGHT = 2.0
_C.MODEL.ATSS.USE_DCN_IN_TOWER = False  # deformable conv as the last layer of each tower
_C.MODEL.ATSS.ANCHOR_SIZES = (64, 128, 256, 512, 1024)  # one per level P3..P7
_C.MODEL.ATSS.ASPECT_RATIOS = (1.0,)
_C.MODEL.ATSS.ANCHOR_STRIDES = (8, 16, 32, 64, 128)
_C.MODEL.ATSS.STRADDLE_THRESH = 0
_C.MODEL.ATSS.OCTAVE = 2.0
_C.MODEL.ATSS.SCALES_PER_OCTAVE = 1
_C.MODEL.ATSS.LOSS_ALPHA = 0.25
_C.MODEL.ATSS.LOSS_GAMMA = 2.0
_C.MODEL.ATSS.POSITIVE_TYPE = "ATSS"  # "ATSS", "SSC" (FCOS constraints), "IoU" or "TOPK"
_C.MODEL.ATSS.TOPK = 9  # candidates per level for ATSS / TOPK assignment
_C.MODEL.ATSS.FG_IOU_THRESHOLD = 0.5  # POSITIVE_TYPE "IoU"
_C.MODEL.ATSS.BG_IOU_THRESHOLD = 0.4
_C.MODEL.ATSS.REGRESSION_TYPE = "BOX"  # "BOX" (anchor deltas) or "POINT" (l, t, r, b distances)

# -----------------------------------------------------------------------------
# Solver
# -----------------------------------------------------------------------------
_C.SOLVER = CN()
_C.SOLVER.MAX_ITER = 40000
_C.SOLVER.BASE_LR = 0.001
_C.SOLVER.BIAS_LR_FACTOR = 2
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.WEIGHT_DECAY = 0.0005
_C.SOLVER.WEIGHT_DECAY_BIAS = 0
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (30000,)
_C.SOLVER.WARMUP_FACTOR = 1.0 / 3
_C.SOLVER.WARMUP_ITERS = 500
_C.SOLVER.WARMUP_METHOD = "linear"  # "constant" or "linear"
_C.SOLVER.CHECKPOINT_PERIOD = 2500
_C.SOLVER.IMS_PER_BATCH = 16  # global batch: divided by the number of processes
_C.SOLVER.DCONV_OFFSETS_LR_FACTOR = 1.0  # lr multiplier of the deformable-conv offset layers

# -----------------------------------------------------------------------------
# Test
# -----------------------------------------------------------------------------
_C.TEST = CN()
_C.TEST.EXPECTED_RESULTS = []
_C.TEST.EXPECTED_RESULTS_SIGMA_TOL = 4
_C.TEST.IMS_PER_BATCH = 8  # global batch: divided by the number of processes
_C.TEST.DETECTIONS_PER_IMG = 100  # cap per image after NMS (ATSS post-processor and the multi-scale test)

# test-time augmentation (multi-scale + flip, box voting)
_C.TEST.BBOX_AUG = CN()
_C.TEST.BBOX_AUG.ENABLED = False
_C.TEST.BBOX_AUG.H_FLIP = False  # also test the flipped original scale
_C.TEST.BBOX_AUG.SCALES = ()  # extra shorter-side sizes
_C.TEST.BBOX_AUG.MAX_SIZE = 4000
_C.TEST.BBOX_AUG.SCALE_H_FLIP = False  # also flip each extra scale
_C.TEST.BBOX_AUG.SCALE_RANGES = ()  # per scale, the box-area range it contributes ([lo, hi] in pixels)
_C.TEST.BBOX_AUG.VOTE = False  # box voting after merging
_C.TEST.BBOX_AUG.VOTE_TH = 0.66
_C.TEST.BBOX_AUG.MERGE_TYPE = "vote"  # "vote" or "soft-vote"

# -----------------------------------------------------------------------------
# Misc
# -----------------------------------------------------------------------------
_C.OUTPUT_DIR = "."
_C.PATHS_CATALOG = os.path.join(os.path.dirname(__file__), "paths_catalog.py")

# -----------------------------------------------------------------------------
# Additions (keys the official defaults do not have)
# -----------------------------------------------------------------------------
_C.DTYPE = "float32"  # "float16": mixed precision on GPU; "bfloat16": on GPU or a CPU with avx512_bf16/AMX
_C.AMP_VERBOSE = False
# weight files (MODEL.WEIGHT, --weights, resumed checkpoints) are unpickled as plain data only:
# tensors/arrays, numbers, strings, lists and dicts. True loads a file that needs more, which
# could run code while loading: only for files from a trusted source
_C.MODEL.TRUST_WEIGHT_FILE = False
# seeds Python, NumPy and torch in every process and data-loader worker, the data order and
# every sample's random transforms; negative: a random seed (logged, and kept on resume)
_C.SEED = -1
# seconds a process waits for the others (start-up, collectives, the checkpoint and evaluation
# barriers) before it stops with an error, instead of torch's 30 minutes of silence
_C.DIST_TIMEOUT = 600
# TensorBoard event files in OUTPUT_DIR: training scalars, evaluation metrics and pictures
_C.TENSORBOARD = CN()
_C.TENSORBOARD.ENABLED = True
_C.TENSORBOARD.NUM_IMAGES = 4  # validation images drawn with their detections after each evaluation
# test_net.py and the demo predictor fold the frozen norms into the convolutions (and use
# channels_last on the CPU) before evaluating: outputs change by float rounding only
_C.TEST.OPTIMIZE_FOR_INFERENCE = True
# COCO metrics: "pycocotools" (the official evaluator) or "faster-coco-eval" (same numbers, faster)
_C.TEST.COCO_EVAL_BACKEND = "pycocotools"
# detections per image COCOeval keeps for its AP (the last) and AR columns: COCO's (1, 10, 100);
# dense scenes raise the last one, e.g. (1, 100, 1000), with TEST.DETECTIONS_PER_IMG at least as large
_C.TEST.COCO_MAX_DETS = (1, 10, 100)
# Conventions: the defaults are the official code's; configs/mmdet/ sets mmdetection 3.x's, so
# that mmdetection's ATSS checkpoints (mmdet://...) give mmdetection's detections.
# box pixel convention: True, a box over pixels x1..x2 is x2 - x1 + 1 wide (anchors centred on
# stride / 2 with +1 sizes, box coding, clipping to [0, W - 1], COCO json widths); False, it is
# x2 - x1 wide: anchors centred on the grid points (offset 0), coding without +1 and dw/dh
# clamped on both sides, boxes clipped to [0, W] (mmdetection, torchvision, detectron2)
_C.MODEL.LEGACY_PLUS_ONE = True
# P7 = conv(ReLU(P6)) as in the official code; False: P7 = conv(P6) (mmdetection's
# relu_before_extra_convs=False)
_C.MODEL.FPN.RELU_BEFORE_P7 = True
# detections from the head outputs: "official" (candidates ranked by cls x centerness, score
# sqrt(cls x centerness), multi-label NMS with +1, the cap keeps ties, candidate order kept);
# "mmdet" (ranked by cls alone, score cls x centerness, class-wise NMS without +1 as mmcv's
# batched_nms, boxes with no width or height dropped, the best DETECTIONS_PER_IMG by score)
_C.MODEL.ATSS.POSTPROCESS = "official"
# RGB in 0..255 (mmdetection, with its PIXEL_MEAN / PIXEL_STD); needs TO_BGR255 False
_C.INPUT.TO_RGB255 = False
# "official": PIL bilinear resize to the official size (shorter side MIN_SIZE, longer side
# capped, int() rounding); "mmdet": OpenCV bilinear resize by min(MAX_SIZE / long, MIN_SIZE /
# short) with int(x * scale + 0.5) rounding (mmcv.imrescale)
_C.INPUT.RESIZE_STYLE = "official"
# apply the EXIF orientation when decoding (OpenCV's default, mmdetection); the official code
# (PIL) ignores it, as do COCO's boxes
_C.INPUT.EXIF_ORIENTATION = False
# ---- Training workflow (engine/validation.py, solver/build.py, engine/ema.py); all off by default
# evaluation during training on DATASETS.VAL (DATASETS.TEST when empty): a split kept apart from
# the final test set, so that choosing the best checkpoint does not peek at the reported numbers
_C.DATASETS.VAL = ()
# every N iterations and at the end: evaluate, append the figures to OUTPUT_DIR/metrics.json and
# keep OUTPUT_DIR/model_best.pth; 0: off (evaluation once, after training, on DATASETS.TEST)
_C.SOLVER.TEST_PERIOD = 0
# the figure model_best.pth maximises: a metric of the first validation dataset ("AP", "AP50",
# "mAP" for VOC, "AP-<class name>") or "<dataset>/<metric>"; a leading "-": lower is better
_C.SOLVER.BEST_METRIC = "AP"
# "SGD" (the official optimiser, with MOMENTUM) or "AdamW" (with BETAS, decoupled weight decay)
_C.SOLVER.OPTIMIZER = "SGD"
_C.SOLVER.BETAS = (0.9, 0.999)
# weight decay of normalisation-layer weights (GroupNorm, BatchNorm); negative: WEIGHT_DECAY, as
# officially. Biases keep WEIGHT_DECAY_BIAS and BIAS_LR_FACTOR
_C.SOLVER.WEIGHT_DECAY_NORM = -1.0
# "WarmupMultiStepLR" (official: STEPS, GAMMA) or "WarmupCosineLR" (from BASE_LR after the
# warm-up down to BASE_LR_END at MAX_ITER)
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
_C.SOLVER.BASE_LR_END = 0.0
# gradient clipping before each step (after the float16 loss scale is removed): "value" clamps
# every gradient element to +-CLIP_VALUE; "norm" scales all gradients together so that their
# NORM_TYPE-norm is at most CLIP_VALUE (torch.nn.utils.clip_grad_norm_, as mmdetection's grad_clip)
_C.SOLVER.CLIP_GRADIENTS = CN()
_C.SOLVER.CLIP_GRADIENTS.ENABLED = False
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
# each iteration's SOLVER.IMS_PER_BATCH runs as this many forward/backward passes before one
# optimiser step, the loss normalised over the whole batch: the same step in less memory
_C.SOLVER.ACCUMULATE_STEPS = 1
# an exponential moving average of the weights, updated after every step with the decay
# DECAY * (1 - exp(-updates / WARMUP_ITERS)) (YOLOX's warm-up); evaluations during and after
# training and model_best.pth use the averaged weights
_C.MODEL.EMA = CN()
_C.MODEL.EMA.ENABLED = False
_C.MODEL.EMA.DECAY = 0.9998
_C.MODEL.EMA.WARMUP_ITERS = 2000
# ---- Training data (data/transforms/build.py, data/samplers/, the ATSS loss); all off by default
# augmentation by torchvision.transforms.v2, each sample's draws from (SEED, iteration, rank,
# position in the batch). Before the resize: colour jitter (RandomPhotometricDistort), zoom out
# (RandomZoomOut onto the mean colour, up to ZOOM_OUT_MAX_RATIO times the image side) and SSD's
# IoU crop (RandomIoUCrop), each applied with its probability; after the resize: large-scale
# jitter (ScaleJitter by a factor in SCALE_JITTER_RANGE, then a random crop back to the resized
# size; empty = off) and the flips. Boxes that leave the picture are dropped
# (SanitizeBoundingBoxes, boxes under 1 pixel)
_C.INPUT.PHOTOMETRIC_DISTORT_PROB = 0.0
_C.INPUT.ZOOM_OUT_PROB = 0.0
_C.INPUT.ZOOM_OUT_MAX_RATIO = 4.0
_C.INPUT.IOU_CROP_PROB = 0.0
_C.INPUT.SCALE_JITTER_RANGE = ()
_C.INPUT.HORIZONTAL_FLIP_PROB_TRAIN = 0.5  # the official pipeline's flip
_C.INPUT.VERTICAL_FLIP_PROB_TRAIN = 0.0
# True: training leaves out images without a usable box (the official code); False: they train
# as background, classification loss only (COCO; VOC images are never left out, as officially)
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True
# "TrainingSampler" (the official shuffled order) or "RepeatFactorTrainingSampler" (LVIS's: an
# image repeats max(1, sqrt(REPEAT_THRESHOLD / f)) times per epoch, f the fraction of training
# images with its rarest category; fractional repeats are drawn per epoch)
_C.DATALOADER.SAMPLER_TRAIN = "TrainingSampler"
_C.DATALOADER.REPEAT_THRESHOLD = 0.0
# True: COCO crowd boxes (and VOC difficult ones when use_difficult is off) become ignore regions:
# an anchor that is no object's positive and lies over one (the fraction of the anchor's area
# inside it above IGNORE_IOF_THRESHOLD, mmdetection's "iof") has no classification loss.
# False: they are dropped, as officially
_C.MODEL.ATSS.IGNORE_CROWD = False
_C.MODEL.ATSS.IGNORE_IOF_THRESHOLD = 0.5
# ---- Dense scenes (all off by default)
# True: the post-processing's NMS (official or mmdet, eager and exported) suppresses overlapping
# boxes of every class, not only of the same class (classes that overlap, e.g. SKU-110K's look-alikes)
_C.MODEL.ATSS.NMS_CLASS_AGNOSTIC = False
# tiled inference (engine/tiling.py) for test_net.py, the predictor and the image demo: the whole
# image at the test size plus overlapping SIZE x SIZE tiles of the original (neighbours share
# OVERLAP x SIZE pixels), each at the test size, merged by the post-processing's NMS and cap
_C.TEST.TILE = CN()
_C.TEST.TILE.ENABLED = False
_C.TEST.TILE.SIZE = 800
_C.TEST.TILE.OVERLAP = 0.25
