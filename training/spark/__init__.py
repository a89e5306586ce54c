"""Scale-out engine: the training and scoring jobs on Apache Spark (``--engine spark``).

The same data contract (:mod:`training.spark.data`), the same feature function
(:mod:`models.features`, run per hash bucket of customers), the same trainers on a sample of
customers with the CLV model refitted on sufficient statistics of every customer
(:mod:`training.spark.train`), and scoring through ``mlflow.pyfunc.spark_udf``
(:mod:`training.spark.score`). PySpark is an optional dependency (``pip install 'cvm[spark]'``);
nothing here is imported by the pandas path or the service.
"""
