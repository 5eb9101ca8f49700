"""Small utilities shared by models, callbacks and examples."""

from keras_pt.utils.image_grid import image_grid, save_image_grid
from keras_pt.utils.nearest_neighbors import NearestNeighborIndex
