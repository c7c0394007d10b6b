//! The only code that knows HDF5 and the Keras file layouts (Keras 2 / tf.keras .h5, Keras 3 .h5,
//! and the Keras 3 .keras zip).
