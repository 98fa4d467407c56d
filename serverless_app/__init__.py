"""wschat: real-time WebSocket chat on API Gateway, Lambda and DynamoDB.

This package is also the root of the Lambda asset, so nothing imported at
package level may depend on ``aws_cdk``.
"""
