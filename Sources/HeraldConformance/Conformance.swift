public import HeraldCore
